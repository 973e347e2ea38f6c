"""`--profile BACKEND:MODE:SCENARIO`: where one sessionware app spends a request's time."""

from __future__ import annotations

import time

from sessionware import Config, Store

from .lineup import MODES
from .scenarios import SCENARIOS, scenario_client
from .servers import BACKENDS, running_servers, storage_options
from .starlette_apps import bare, sessionware

SECONDS = 4.0


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
