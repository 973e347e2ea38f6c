"""Where a backend's counter spends the time between "bare + raw pair" and sessionware.

    .cache/bench-venv/bin/python -m benchmarks.gap postgres [--quick]   (after benchmarks/run,
                                                                       which makes that venv)

For one backend, the counter scenario of these apps, timed in interleaved rounds as in
`benchmarks/run`:

- bare Starlette, and sessionware on memory: the app, and the session layer alone;
- the raw client pair awaited in a bare handler (the floor a session layer can reach);
- the plugin's own hooks, `storage_get` then `storage_compare_and_set` of what it read,
  awaited in a bare handler: what the plugin adds to the raw client;
- sessionware on memory with the raw pair awaited in its counter handler: the session
  layer's Python placed between the same network waits as on the backend;
- sessionware on the backend.

The differences split the gap: plugin = hooks - raw pair; session layer between waits =
(memory + pair) - raw pair in handler; what is left is how the two interact.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from sessionware import Config, Store

from . import starlette_apps
from .driver import Plan, Series, measure
from .lineup import raw_pair
from .scenarios import ScenarioRun, scenario_client
from .servers import running_servers, storage_factory, storage_options

FULL = Plan(rounds=151, batch=0.004, warmup=0.15)
QUICK = Plan(rounds=41, batch=0.003, warmup=0.03)
IO_BACKENDS = ("redis", "sqlite", "memcache", "postgres")


class HookPair:
    """The plugin's hooks in the order a counter calls them: get, then compare-and-set of
    the bytes it read (a create the first time)."""

    def __init__(self, plugin: Any) -> None:
        self._plugin = plugin
        self._value = b"\x01" + b"\x00" * 90

    async def pair(self) -> None:
        plugin = self._plugin
        current = await plugin.storage_get(key="gap-hooks")
        following = self._value if current != self._value else self._value[::-1]
        if not await plugin.storage_compare_and_set(
            key="gap-hooks", expected=current, value=following, expires_in=86400.0
        ):
            raise RuntimeError("the hooks' compare-and-set lost: nothing else writes this key")

    async def close(self) -> None:
        await self._plugin.storage_close()


async def main(backend: str, quick: bool) -> int:
    with running_servers({backend}) as servers:
        options = storage_options(backend, servers, "gap")
        if options is None:
            print(f"{backend}: its server could not be started")
            return 2
        raw_inside = raw_pair(backend, servers, "gap_floor")
        raw_between = raw_pair(backend, servers, "gap_between")
        await raw_inside.open()
        await raw_between.open()
        hooks = HookPair(storage_factory(backend)(**storage_options(backend, servers, "gap-hooks")))
        memory = Store(Config())
        apps = [
            starlette_apps.bare(),
            starlette_apps.sessionware(
                memory, auto_save=False, name="sessionware memory", backend="memory"
            ),
            starlette_apps.floor(raw_inside, "bare + raw pair in handler"),
            starlette_apps.floor(hooks, "bare + plugin hooks in handler"),
            starlette_apps.sessionware(
                Store(Config()),
                auto_save=False,
                name="sessionware memory + raw pair in handler",
                backend="memory",
                between=raw_between.pair,
            ),
            starlette_apps.sessionware(
                Store(Config(storage=backend, storage_options=options)),
                auto_save=False,
                name=f"sessionware {backend}",
                backend=backend,
            ),
        ]
        subjects = [
            ScenarioRun(bench, "counter", await scenario_client(bench, "counter")) for bench in apps
        ]
        found, failed = await measure(subjects, QUICK if quick else FULL)
        for bench in apps:
            await bench.close()
        await raw_between.close()
    _print(backend, found, failed)
    return 1 if failed else 0


def _print(backend: str, found: dict[str, Series], failed: dict[str, str]) -> None:
    def median(name: str) -> float:
        return found[name].median

    print(f"{backend} counter: medians of interleaved rounds, µs per request")
    for name, series in found.items():
        print(
            f"  {name:<44} {series.median:8.1f}  spread {series.spread:6.1%}"
            f"  cpu {series.cpu_median:7.1f}"
        )
    for name, why in failed.items():
        print(f"  FAILED {name}: {why}")
    if failed:
        return
    bare, memory = median("bare starlette"), median("sessionware memory")
    inside, hooks = median("bare + raw pair in handler"), median("bare + plugin hooks in handler")
    between = median("sessionware memory + raw pair in handler")
    ours = median(f"sessionware {backend}")
    rows = [
        ("the plugin (hooks - raw pair, each in a bare handler)", hooks - inside),
        ("the session layer alone (memory - bare)", memory - bare),
        ("the session layer between the waits ((memory + pair) - pair)", between - inside),
    ]
    print(f"sessionware {backend} - raw pair in a bare handler: {ours - inside:+.1f} µs, of which")
    for label, value in rows:
        print(f"  {label:<62} {value:+7.1f} µs")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m benchmarks.gap", description=__doc__)
    parser.add_argument("backend", choices=IO_BACKENDS)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    sys.exit(asyncio.run(main(args.backend, args.quick)))
