"""Litestar with auto-save. Run: uvicorn examples.litestar_app:app"""

from litestar import Litestar, Request, get, post
from litestar.middleware import DefineMiddleware
from sessionware import SessionMiddleware, Store

store = Store()


@get("/")
async def visit(request: Request) -> dict[str, int]:  # type: ignore[type-arg]
    session = await store.get(request)
    session.set("visits", session.get("visits", 0) + 1)
    return {"visits": session["visits"]}


@post("/logout", status_code=200)
async def logout(request: Request) -> dict[str, bool]:  # type: ignore[type-arg]
    await (await store.get(request)).destroy()
    return {"logged_out": True}


app = Litestar(
    [visit, logout],
    middleware=[DefineMiddleware(SessionMiddleware, store=store, auto_save=True)],
)
