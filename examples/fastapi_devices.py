"""Log out everywhere with FastAPI. Run: uvicorn examples.fastapi_devices:app"""

from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException
from pydantic import BaseModel
from sessionware import Config, Session, SessionMiddleware, Store
from sessionware.fastapi import session_dependency

store = Store(Config(owner_key="user_id"))  # the session key that says whose session it is
CurrentSession = Annotated[Session, Depends(session_dependency(store))]
api = FastAPI()


class Login(BaseModel):
    user_id: str


@api.post("/login")
async def login(body: Login, session: CurrentSession) -> dict[str, str]:
    # ...check the password first...
    await session.regenerate()
    session.set("user_id", body.user_id)  # this session is now one of the user's
    return {"hello": body.user_id}


def signed_in_user(session: Session) -> str:
    user_id = session.get("user_id")
    if user_id is None:
        raise HTTPException(status_code=401, detail="log in first")
    return str(user_id)


@api.get("/sessions")
async def my_sessions(session: CurrentSession) -> list[dict[str, Any]]:
    return [
        {
            "created": info.created.isoformat(),
            "expires_at": info.expires_at.isoformat(),
            "this_device": info.handle == session.handle,
        }
        for info in await store.sessions_of(signed_in_user(session))
    ]


@api.post("/sessions/log-out-others")
async def log_out_others(session: CurrentSession) -> dict[str, int]:
    ended = await store.revoke(signed_in_user(session), keep=session)
    return {"logged_out": ended}


app = SessionMiddleware(api, store=store, auto_save=True)
