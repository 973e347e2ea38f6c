"""One benchmark run: servers up, every app built, calls counted, scenarios and crowds timed."""

from __future__ import annotations

import asyncio
import os
import platform
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from . import flask_bench
from .calls import (
    MemcachedCommands,
    RedisCommands,
    ServerCommands,
    count_calls,
    expected_calls,
)
from .driver import CheckFailed, Client, Plan, Series, gather_clients, measure
from .flask_bench import FlaskResults
from .lineup import Lineup, build_lineup
from .scenarios import SCENARIOS, BenchApp, ScenarioRun, check_client, scenario_client
from .servers import Servers, running_servers

CROWD = 64
CROWD_SCENARIOS = ("read", "counter")

FULL = Plan(rounds=151, batch=0.004, warmup=0.15)
FULL_CROWD = Plan(rounds=41, batch=0.05, warmup=0.3, min_count=1)
QUICK = Plan(rounds=41, batch=0.003, warmup=0.03)
QUICK_CROWD = Plan(rounds=9, batch=0.03, warmup=0.05, min_count=1)

Log = Callable[[str], None]


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


@dataclass
class Results:
    """Everything one run found: timings, storage calls, failures, and where it ran."""

    backends: list[str] = field(default_factory=list)  # as asked for, whether they ran or not
    apps: dict[str, BenchApp] = field(default_factory=dict)
    scenarios: dict[str, dict[str, Series]] = field(default_factory=dict)
    crowd: dict[str, dict[str, Series]] = field(default_factory=dict)
    calls: dict[str, dict[str, Any]] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    flask: FlaskResults | None = None  # the WSGI section
    machine: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0


class Crowd:
    """`CROWD` clients at once on one app, each on its own session."""

    def __init__(self, bench: BenchApp, scenario: str, clients: list[Client]) -> None:
        self.name = bench.name
        self.bench = bench
        self.scenario = scenario
        self.clients = clients
        self.width = len(clients)

    async def run(self, count: int) -> None:
        await gather_clients(self.clients, count)

    def check(self) -> None:
        for client in self.clients:
            check_client(self.bench, self.scenario, client)


def machine() -> dict[str, Any]:
    model = "unknown"
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "cpus": os.cpu_count(),
        "cpu": model,
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "load_before": os.getloadavg(),
    }


def _server_commands(backend: str, servers: Servers) -> ServerCommands | None:
    if backend == "redis" and servers.redis is not None:
        return RedisCommands()
    if backend == "memcache" and servers.memcached is not None:
        return MemcachedCommands(servers.memcached.address)
    return None


async def _count_calls(results: Results, lineup: Lineup, servers: Servers) -> None:
    for recipe in lineup.recipes:
        server = _server_commands(recipe.backend, servers)
        try:
            plugin = recipe.plugin(servers, "-counted")
            results.calls[recipe.name] = await count_calls(
                recipe.build,
                plugin,
                expected=expected_calls(plugin, owner=recipe.variant.owner),
                scenarios=recipe.variant.scenarios or tuple(SCENARIOS),
                server=server,
            )
        except CheckFailed as exc:
            results.failed[f"{recipe.name}: storage calls"] = str(exc)
        except Exception as exc:
            results.failed[f"{recipe.name}: storage calls"] = f"{type(exc).__name__}: {exc}"
        finally:
            if server is not None:
                server.close()


async def _subjects(
    apps: Sequence[BenchApp], scenario: str, results: Results, clients: int = 1
) -> list[Any]:
    subjects: list[Any] = []
    for bench in apps:
        if not bench.runs(scenario):
            continue
        try:
            made = [await scenario_client(bench, scenario) for _ in range(clients)]
        except Exception as exc:
            results.failed[f"{bench.name}: {scenario}"] = f"{type(exc).__name__}: {exc}"
            continue
        if clients == 1:
            subjects.append(ScenarioRun(bench, scenario, made[0]))
        else:
            subjects.append(Crowd(bench, scenario, made))
    return subjects


def _record(
    results: Results, scenario: str, found: tuple[dict[str, Series], dict[str, str]]
) -> dict[str, Series]:
    series, failed = found
    for name, why in failed.items():
        results.failed[f"{name}: {scenario}"] = why
    return series


async def run(
    backends: Sequence[str],
    *,
    quick: bool = False,
    peers: bool = True,
    crowd: bool = True,
    flask: bool = True,
    plans: tuple[Plan, Plan] | None = None,
    log: Log = _stderr,
) -> Results:
    """Measure everything `backends` allow; what cannot run is left out with a note.

    `plans` (one request at a time, then the crowd) overrides `quick`, for the smoke test.
    """
    started = time.perf_counter()
    plan, crowd_plan = plans or ((QUICK, QUICK_CROWD) if quick else (FULL, FULL_CROWD))
    results = Results(backends=list(backends), machine=machine())
    with running_servers(set(backends)) as servers:
        lineup = await build_lineup(list(backends), servers, peers=peers)
        results.apps = lineup.by_name()
        results.notes.extend(lineup.notes)
        for note in lineup.notes:
            log(f"note: {note}")
        try:
            log("counting storage calls per scenario …")
            await _count_calls(results, lineup, servers)
            for scenario in SCENARIOS:
                subjects = await _subjects(lineup.apps, scenario, results)
                if scenario == "counter":
                    subjects.extend(await _subjects(lineup.floors, scenario, results))
                    subjects.extend(lineup.raw.values())
                log(f"timing {scenario}: {len(subjects)} subjects x {plan.rounds} rounds …")
                results.scenarios[scenario] = _record(
                    results, scenario, await measure(subjects, plan)
                )
            redis_apps = [
                bench
                for bench in lineup.apps
                if bench.backend == "redis"
                and bench.family in ("sessionware", "starsessions")
                and bench.scenarios is None  # the plain apps, not the variants
            ]
            if crowd and redis_apps:
                for scenario in CROWD_SCENARIOS:
                    subjects = await _subjects(redis_apps, scenario, results, clients=CROWD)
                    log(f"timing {CROWD} concurrent clients, {scenario}: {len(subjects)} apps …")
                    results.crowd[scenario] = _record(
                        results, f"{CROWD} clients {scenario}", await measure(subjects, crowd_plan)
                    )
        finally:
            await lineup.close()
        if flask:
            # In a thread with no event loop, as a WSGI worker: see flask_bench.
            results.flask = await asyncio.to_thread(
                flask_bench.run, servers, list(backends), plan, peers=peers, log=log
            )
            results.notes.extend(results.flask.notes)
            results.failed.update(results.flask.failed)
    results.machine["load_after"] = os.getloadavg()
    results.seconds = time.perf_counter() - started
    return results
