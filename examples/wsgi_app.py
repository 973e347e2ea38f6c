"""A plain WSGI app with explicit saves. Run: gunicorn examples.wsgi_app:app"""

import json
from collections.abc import Callable, Iterable
from typing import Any

from sessionware import Store
from sessionware.wsgi import SessionMiddleware, get_session

store = Store()


def visits(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    session = get_session(environ)
    if environ["PATH_INFO"] == "/logout":
        session.destroy()
        body = {"logged_out": True}
    else:
        session["visits"] = session.get("visits", 0) + 1
        session.save()
        body = {"visits": session["visits"], "fresh": session.fresh}
    start_response("200 OK", [("Content-Type", "application/json")])
    return [json.dumps(body).encode()]


app = SessionMiddleware(visits, store=store)
