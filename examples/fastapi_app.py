"""FastAPI with a session dependency and auto-save. Run: uvicorn examples.fastapi_app:app"""

from typing import Annotated

from fastapi import Depends, FastAPI
from pydantic import BaseModel
from sessionware import Session, SessionMiddleware, Store
from sessionware.fastapi import session_dependency

store = Store()
CurrentSession = Annotated[Session, Depends(session_dependency(store))]
api = FastAPI()


class Login(BaseModel):
    name: str


@api.post("/login")
async def login(body: Login, session: CurrentSession) -> dict[str, str]:
    await session.regenerate()
    session.set("user", body.name)
    return {"hello": body.name}


@api.get("/me")
async def me(session: CurrentSession) -> dict[str, str | None]:
    return {"user": session.get("user")}


@api.post("/logout")
async def logout(session: CurrentSession) -> dict[str, bool]:
    await session.destroy()
    return {"logged_out": True}


app = SessionMiddleware(api, store=store, auto_save=True)
