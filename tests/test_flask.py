"""S11 for Flask: `flask.session` is a sessionware session, in Flask's own ways of working
(its test client, `flask run`, and gunicorn with forked, threaded workers)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from http.cookiejar import CookieJar
from pathlib import Path
from typing import Any

import flask
import pytest
from flask import session
from sessionware import Config, Store
from sessionware.flask import FlaskSession, Sessionware

from tests.support.apps import CountingStorage, real_plugin
from tests.support.backends import Backend
from tests.support.processes import free_port, wait_for_http

ROOT = Path(__file__).parent.parent


def make_app(store: Store, **settings: Any) -> flask.Flask:
    app = flask.Flask(__name__)
    app.config.update(settings)
    Sessionware(app, store=store)

    @app.get("/count")
    def count() -> Any:
        session["n"] = session.get("n", 0) + 1
        return {"n": session["n"], "id": session.id, "fresh": session.fresh}

    @app.get("/untouched")
    def untouched() -> str:
        return "untouched"

    @app.post("/login")
    def login() -> Any:
        session.regenerate()
        session["user"] = flask.request.get_json()["name"]
        session.permanent = True  # Flask code does this; lifetime still comes from Config
        return {"id": session.id}

    @app.post("/logout")
    def logout() -> Any:
        session.destroy()
        return {"ended": True}

    @app.get("/dict")
    def as_a_dict() -> Any:
        session.setdefault("a", 1)
        session.update(b=2)
        popped = session.pop("b")
        return {"keys": list(session), "popped": popped, "has_a": "a" in session}

    return app


@pytest.fixture
def store() -> Iterator[Store]:
    store = Store()
    yield store
    store.sync.close()


def set_cookie(response: Any) -> str | None:
    values = response.headers.getlist("Set-Cookie")
    assert len(values) <= 1, values  # R11
    return values[0] if values else None


def test_s11_flask_session_counts_with_flasks_test_client(store: Store) -> None:
    client = make_app(store).test_client()
    assert [client.get("/count").json["n"] for _ in range(3)] == [1, 2, 3]  # type: ignore[index]
    assert client.get_cookie("session_id") is not None


def test_s11_flask_session_is_a_sessionware_session_loaded_lazily() -> None:
    storage = CountingStorage(real_plugin(Backend("memory", "memory")))
    store = Store(Config(storage=storage))
    client = make_app(store).test_client()
    client.get("/count")
    storage.calls.clear()
    response = client.get("/untouched")
    assert response.text == "untouched"
    assert storage.calls == []  # a request that never reads its session costs nothing
    assert set_cookie(response) is None
    assert "Vary" not in response.headers
    store.sync.close()


def test_s11_session_transaction_plants_data_the_app_then_reads(store: Store) -> None:
    client = make_app(store).test_client()
    with client.session_transaction() as planted:
        assert isinstance(planted, FlaskSession)
        planted["n"] = 41
    assert client.get("/count").json["n"] == 42  # type: ignore[index]


def test_s11_regenerate_and_destroy_work_in_views(store: Store) -> None:
    client = make_app(store).test_client()
    first = client.get("/count").json["id"]  # type: ignore[index]
    new_id = client.post("/login", json={"name": "ada"}).json["id"]  # type: ignore[index]
    assert new_id != first
    assert store.sync.get_by_id(first) is None  # R9: the old id opens nothing
    stored = store.sync.get_by_id(new_id)
    assert stored is not None
    assert dict(stored.items()) == {"n": 1, "user": "ada"}
    assert "_permanent" not in stored  # session.permanent stores nothing
    response = client.post("/logout")
    assert "Max-Age=0" in (set_cookie(response) or "")
    assert store.sync.get_by_id(new_id) is None


def test_s11_flasks_own_cookie_settings_no_longer_apply(store: Store) -> None:
    app = make_app(
        store,
        SESSION_COOKIE_NAME="flask_session",
        PERMANENT_SESSION_LIFETIME=60,
        SESSION_COOKIE_SAMESITE="Strict",
    )
    cookie = set_cookie(app.test_client().get("/count")) or ""
    assert cookie.startswith("session_id=")
    assert "Max-Age=86400" in cookie  # Config.expiration
    assert "SameSite=Lax" in cookie  # Config.cookie_same_site


def test_s11_flask_session_has_every_mapping_method(store: Store) -> None:
    assert make_app(store).test_client().get("/dict").json == {
        "keys": ["a"],
        "popped": 2,
        "has_a": True,
    }


def test_s11_a_failed_auto_save_in_flask_answers_500_without_detail() -> None:
    storage = CountingStorage(real_plugin(Backend("memory", "memory")))
    store = Store(Config(storage=storage))
    client = make_app(store).test_client()
    storage.fail_on["set"] = PermissionError("READONLY replica")
    response = client.get("/count")
    assert response.status_code == 500
    assert response.text == "Internal Server Error"
    assert set_cookie(response) is None
    store.sync.close()


def test_s11_vary_merges_with_flasks_own(store: Store) -> None:
    app = make_app(store)

    @app.get("/negotiated")
    def negotiated() -> Any:
        response = flask.make_response({"n": session.get("n")})
        response.vary.add("Accept-Encoding")
        return response

    response = app.test_client().get("/negotiated")
    assert response.headers["Vary"] == "Accept-Encoding, Cookie"


def test_s11_init_app_and_explicit_saves() -> None:
    store = Store()
    extension = Sessionware(store=store, auto_save=False)
    app = flask.Flask(__name__)
    extension.init_app(app)

    @app.get("/")
    def count() -> Any:
        session["n"] = session.get("n", 0) + 1
        if "save" in flask.request.args:
            session.save()
        return {"n": session["n"]}

    client = app.test_client()
    assert client.get("/").json == {"n": 1}
    assert client.get_cookie("session_id") is None  # R20: nothing stored unasked
    client.get("/?save")
    assert client.get("/?save").json == {"n": 2}
    assert app.extensions["sessionware"] is extension
    store.sync.close()


# -- real servers ---------------------------------------------------------------------------


def get_json(opener: urllib.request.OpenerDirector, url: str) -> Any:
    with opener.open(url, timeout=10) as response:
        return json.loads(response.read())


def serve(argv: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        argv,
        cwd=ROOT,
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def test_s11_flask_run_serves_the_example() -> None:
    port = free_port()
    flask_cli = str(Path(sys.executable).parent / "flask")
    process = serve([flask_cli, "--app", "examples.flask_app", "run", "--port", str(port)], {})
    try:
        url = f"http://127.0.0.1:{port}/"
        wait_for_http(url, process)
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(CookieJar()))
        assert [get_json(opener, url)["visits"] for _ in range(3)] == [1, 2, 3]
    finally:
        process.terminate()
        process.wait(10)


def test_s11_gunicorn_with_preload_forked_threaded_workers_keeps_every_counter(
    redis_server: Any,
) -> None:
    """Workers forked after the app (and its Store) were imported: each makes its own loop and
    connections at its first request; threads in a worker share one store."""
    gunicorn = shutil.which("gunicorn", path=str(Path(sys.executable).parent))
    assert gunicorn is not None
    port = free_port()
    argv = [gunicorn, "--preload", "-w", "3", "--threads", "4", "-b", f"127.0.0.1:{port}"]
    process = serve(
        [*argv, "examples.flask_app:app"],
        {"SESSIONWARE_STORAGE": f"redis://{redis_server.host}:{redis_server.port}/5"},
    )
    try:
        url = f"http://127.0.0.1:{port}/"
        wait_for_http(url, process)
        openers = [
            urllib.request.build_opener(urllib.request.HTTPCookieProcessor(CookieJar()))
            for _ in range(6)
        ]
        counts = [[get_json(opener, url)["visits"] for _ in range(10)] for opener in openers]
        assert counts == [list(range(1, 11))] * 6
    finally:
        process.terminate()
        process.wait(10)
