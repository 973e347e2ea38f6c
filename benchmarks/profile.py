"""`--profile BACKEND:MODE:SCENARIO`: where one sessionware app spends a request's time;
`--profile flask-BACKEND:MODE:SCENARIO` for its Flask app (memory or redis)."""

from __future__ import annotations

import time

from sessionware import Config, Store

from .lineup import MODES
from .scenarios import SCENARIOS, scenario_client
from .servers import BACKENDS, running_servers, storage_options
from .starlette_apps import bare, sessionware

SECONDS = 4.0


def profile_flask(spec: str) -> int:
    """The same for a Flask app, driven through WSGI in this thread, with no event loop."""
    from pyinstrument import Profiler

    from . import flask_apps, flask_bench
    from .wsgi import scenario_client as wsgi_client

    backend, mode, scenario = [*spec.removeprefix("flask-").split(":"), "", "", ""][:3]
    if backend not in flask_bench.FLASK_BACKENDS or mode not in flask_bench.MODES:
        print(f"--profile flask-BACKEND:MODE:SCENARIO, BACKEND one of {flask_bench.FLASK_BACKENDS}")
        return 2
    if scenario not in SCENARIOS:
        print(f"unknown scenario {scenario!r}; choose from {tuple(SCENARIOS)}")
        return 2
    with running_servers({backend}) as servers:
        options = storage_options(backend, servers, f"profile-flask-{mode}")
        if options is None:
            print(f"cannot profile {spec}: no {backend} server")
            return 2
        store = Store(Config(storage=backend, storage_options=options))
        bench = flask_apps.sessionware(
            store, auto_save=flask_bench.MODES[mode], name=spec, backend=backend
        )
        client = wsgi_client(bench, scenario)
        client.run(2000)
        profiler = Profiler(interval=0.0002, async_mode="disabled")
        done, started = 0, time.perf_counter()
        profiler.start()
        while time.perf_counter() - started < SECONDS:
            client.run(500)
            done += 500
        profiler.stop()
        elapsed = time.perf_counter() - started
        store.sync.close()
    print(profiler.output_text(unicode=True, color=False, show_all=False))
    print(f"{spec}: {done} requests, {elapsed / done * 1e6:.1f} µs per request under the profiler")
    return 0


async def profile(spec: str) -> int:
    """Run one app and scenario for a few seconds under pyinstrument and print the tree."""
    from pyinstrument import Profiler

    backend, mode, scenario = [*spec.split(":"), "", "", ""][:3]
    if backend not in (*BACKENDS, "bare") or scenario not in SCENARIOS:
        print(
            f"--profile wants BACKEND:MODE:SCENARIO, BACKEND one of {BACKENDS} or bare, "
            f"MODE one of {tuple(MODES)}, SCENARIO one of {tuple(SCENARIOS)}"
        )
        return 2
    with running_servers({backend}) as servers:
        if backend == "bare":
            bench = bare()
        else:
            options = storage_options(backend, servers, f"profile-{mode}")
            if options is None or mode not in MODES:
                print(f"cannot profile {spec}: unknown mode or no server")
                return 2
            store = Store(Config(storage=backend, storage_options=options))
            bench = sessionware(store, auto_save=MODES[mode], name=spec, backend=backend)
        client = await scenario_client(bench, scenario)
        await client.run(2000)
        profiler = Profiler(interval=0.0002, async_mode="disabled")
        done, started = 0, time.perf_counter()
        profiler.start()
        while time.perf_counter() - started < SECONDS:
            await client.run(500)
            done += 500
        profiler.stop()
        elapsed = time.perf_counter() - started
        await bench.close()
    print(profiler.output_text(unicode=True, color=False, show_all=False))
    print(f"{spec}: {done} requests, {elapsed / done * 1e6:.1f} µs per request under the profiler")
    return 0
