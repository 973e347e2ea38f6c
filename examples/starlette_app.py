"""Starlette with explicit saves (Fiber v2 style). Run: uvicorn examples.starlette_app:app"""

from sessionware import SessionMiddleware, Store
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

store = Store()


async def visit(request: Request) -> JSONResponse:
    session = await store.get(request)
    session.set("visits", session.get("visits", 0) + 1)
    await session.save()
    return JSONResponse({"visits": session["visits"], "fresh": session.fresh})


async def logout(request: Request) -> JSONResponse:
    session = await store.get(request)
    await session.destroy()
    return JSONResponse({"logged_out": True})


app = SessionMiddleware(
    Starlette(routes=[Route("/", visit), Route("/logout", logout, methods=["POST"])]),
    store=store,
)
