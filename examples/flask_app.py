"""Flask, with flask.session backed by sessionware.

Run: flask --app examples.flask_app run  (or: gunicorn -w 4 --threads 8 examples.flask_app:app)
Storage from SESSIONWARE_STORAGE, e.g. redis://127.0.0.1:6379/0; memory when unset.
"""

import os

from flask import Flask, jsonify, request, session
from flask.typing import ResponseReturnValue
from sessionware import Config, Store
from sessionware.flask import Sessionware

app = Flask(__name__)
store = Store(Config(storage=os.environ.get("SESSIONWARE_STORAGE", "memory")))
Sessionware(app, store=store)


@app.get("/")
def visit() -> ResponseReturnValue:
    session["visits"] = session.get("visits", 0) + 1  # saved at the end of the request
    return jsonify(visits=session["visits"], user=session.get("user"))


@app.post("/login")
def login() -> ResponseReturnValue:
    session.regenerate()  # a new id on every change of privilege
    session["user"] = request.get_json()["name"]
    return jsonify(hello=session["user"])


@app.post("/logout")
def logout() -> ResponseReturnValue:
    session.destroy()
    return jsonify(logged_out=True)
