"""The printed report: a table per scenario, the crowd, and every target with PASS or MISS."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .bench import CROWD, Results
from .driver import Series
from .lineup import FLOOR, MODES, sessionware_name
from .scenarios import SCENARIOS
from .starlette_apps import BARE

UNTOUCHED_BUDGET_US = 2.0
MEMORY_SHARE_OF_STARSESSIONS = 0.5
REDIS_COUNTER_LIMIT = 1.03
OTHER_COUNTER_LIMIT = 1.10
CROWD_GAIN = 1.3


@dataclass(frozen=True)
class Target:
    name: str
    measured: str
    limit: str
    ok: bool | None  # None: could not be measured in this run

    @property
    def mark(self) -> str:
        return "SKIP" if self.ok is None else "PASS" if self.ok else "MISS"


def _median(series: dict[str, Series], name: str) -> float | None:
    found = series.get(name)
    return found.median if found is not None else None


def _row(name: str, s: Series, baseline: Series | None) -> str:
    if baseline is None:
        extra, times = "", ""
    else:
        extra, times = f"{s.median - baseline.median:+9.1f}", f"{s.median / baseline.median:6.2f}"
    return (
        f"  {name:<34} {s.median:9.1f} {s.per_second:>10,.0f} {extra:>9} {times:>6}"
        f" {s.spread * 100:6.1f}% {s.cpu_median:8.1f}"
    )


def scenario_table(results: Results, scenario: str) -> list[str]:
    series = results.scenarios.get(scenario, {})
    lines = [
        f"{scenario}: {SCENARIOS[scenario]}",
        f"  {'app':<34} {'µs/req':>9} {'req/s':>10} {'+µs bare':>9} {'xbare':>6} {'spread':>7}"
        f" {'cpu µs':>8}",
    ]
    for name, s in series.items():
        bench = results.apps.get(name)
        if bench is None:  # a raw client pair: the floor, not an app
            continue
        base = None if bench.family == "bare" else series.get(bench.baseline)
        lines.append(_row(name, s, base))
    raw = [(name, s) for name, s in series.items() if name not in results.apps]
    if raw:
        lines.append(f"  {'raw client pair (no app)':<34} {'µs/pair':>9} {'pairs/s':>10}")
        lines.extend(_row(name, s, None) for name, s in raw)
    return lines


def crowd_table(results: Results) -> list[str]:
    lines: list[str] = []
    for scenario, series in results.crowd.items():
        lines.append(f"{CROWD} concurrent clients on redis, {scenario}: throughput")
        lines.append(f"  {'app':<34} {'req/s':>10} {'µs/req':>9} {'spread':>7} {'cpu µs':>8}")
        for name, s in series.items():
            lines.append(
                f"  {name:<34} {s.per_second:>10,.0f} {s.median:9.1f} {s.spread * 100:6.1f}%"
                f" {s.cpu_median:8.1f}"
            )
        lines.append("")
    return lines


def _best_starsessions(series: dict[str, Series], backend: str) -> tuple[str, float] | None:
    """starsessions in the targets is the better (faster) of its lazy and autoload modes."""
    found = [
        (name, series[name].median)
        for name in (f"starsessions {backend} (lazy)", f"starsessions {backend} (autoload)")
        if name in series
    ]
    return min(found, key=lambda item: item[1]) if found else None


def _untouched(results: Results) -> list[Target]:
    targets = []
    series = results.scenarios.get("untouched", {})
    bare = _median(series, BARE)
    for name, bench in results.apps.items():
        if bench.family != "sessionware":
            continue
        calls = results.calls.get(name, {}).get("untouched", {}).get("storage")
        median = _median(series, name)
        if bare is None or median is None or calls is None:
            targets.append(Target(f"{name} untouched", "not measured", "", None))
            continue
        added = median - bare
        targets.append(
            Target(
                f"{name} untouched",
                f"{added:+.2f} µs over bare, {sum(calls.values()):g} storage calls",
                f"≤ {UNTOUCHED_BUDGET_US:g} µs, 0 calls",
                added <= UNTOUCHED_BUDGET_US and not calls,
            )
        )
    return targets


def _memory(results: Results) -> list[Target]:
    targets = []
    for scenario in ("read", "counter"):
        series = results.scenarios.get(scenario, {})
        bare = _median(series, BARE)
        best = _best_starsessions(series, "memory")
        for mode in MODES:
            name = sessionware_name("memory", mode)
            median = _median(series, name)
            label = f"{name} {scenario} overhead vs starsessions"
            if bare is None or median is None or best is None:
                targets.append(Target(label, "not measured", "", None))
                continue
            ours, theirs = median - bare, best[1] - bare
            share = ours / theirs if theirs > 0 else float("inf")
            targets.append(
                Target(
                    label,
                    f"{ours:.1f} µs vs {theirs:.1f} µs ({best[0]}) = {share:.2f}x",
                    f"≤ {MEMORY_SHARE_OF_STARSESSIONS:.2f}x",
                    share <= MEMORY_SHARE_OF_STARSESSIONS,
                )
            )
    return targets


def _counter_floor(results: Results, backend: str, limit: float) -> list[Target]:
    series = results.scenarios.get("counter", {})
    bare = _median(series, BARE)
    raw = [s for name, s in series.items() if name.startswith(f"raw {backend} ")]
    targets = []
    for mode in MODES:
        name = sessionware_name(backend, mode)
        median = _median(series, name)
        label = f"{name} counter vs bare + raw pair"
        if bare is None or median is None or not raw:
            targets.append(Target(label, "not measured", "", None))
            continue
        floor = bare + raw[0].median
        ratio = median / floor
        targets.append(
            Target(
                label,
                f"{median:.1f} µs / ({bare:.1f} + {raw[0].median:.1f}) = {ratio:.3f}x",
                f"≤ {limit:.2f}x",
                ratio <= limit,
            )
        )
    return targets


def _redis_read_round_trips(results: Results) -> list[Target]:
    targets = []
    for mode in MODES:
        name = sessionware_name("redis", mode)
        commands = results.calls.get(name, {}).get("read", {}).get("redis")
        if commands is None:
            targets.append(Target(f"{name} read: redis commands", "not measured", "", None))
            continue
        total = sum(commands.values())
        shown = ", ".join(f"{n:g} {cmd.upper()}" for cmd, n in commands.items()) or "none"
        targets.append(
            Target(f"{name} read: redis commands", f"{shown} per request", "1", total == 1)
        )
    return targets


def _crowd(results: Results) -> list[Target]:
    targets = []
    for scenario, series in results.crowd.items():
        best = _best_starsessions(series, "redis")
        for mode in MODES:
            name = sessionware_name("redis", mode)
            label = f"{name} {CROWD} clients {scenario} throughput"
            median = _median(series, name)
            if median is None or best is None:
                targets.append(Target(label, "not measured", "", None))
                continue
            gain = best[1] / median
            targets.append(
                Target(
                    label,
                    f"{1e6 / median:,.0f} vs {1e6 / best[1]:,.0f} req/s ({best[0]}) = {gain:.2f}x",
                    f"≥ {CROWD_GAIN:.1f}x",
                    gain >= CROWD_GAIN,
                )
            )
    return targets


def floor_context(results: Results) -> list[str]:
    """Each backend's counter against its raw pair awaited inside a bare app's handler.

    Not a target: it shows how much of the gap to "bare + raw pair" is awaiting I/O from
    inside Starlette's coroutine stack, which any session layer pays, and how much is ours.
    """
    series = results.scenarios.get("counter", {})
    lines = []
    for backend in ("redis", "sqlite", "memcache", "postgres"):
        inside = series.get(f"{FLOOR} {backend} pair in handler")
        if inside is None:
            continue
        for mode in MODES:
            ours = series.get(sessionware_name(backend, mode))
            if ours is not None:
                lines.append(
                    f"  {sessionware_name(backend, mode)} counter: {ours.median:.1f} µs /"
                    f" {inside.median:.1f} µs = {ours.median / inside.median:.3f}x"
                )
    if lines:
        lines.insert(
            0, "context: the counter against its raw pair done inside a bare app's handler"
        )
    return lines


def targets(results: Results) -> list[Target]:
    """Every target that the backends asked for in this run make measurable."""
    asked = set(results.backends)
    found = _untouched(results)
    if "memory" in asked:
        found += _memory(results)
    if "redis" in asked:
        found += _counter_floor(results, "redis", REDIS_COUNTER_LIMIT)
        found += _redis_read_round_trips(results)
    if "sqlite" in asked:
        found += _counter_floor(results, "sqlite", OTHER_COUNTER_LIMIT)
    if "memcache" in asked:
        found += _counter_floor(results, "memcache", OTHER_COUNTER_LIMIT)
    if "postgres" in asked:
        found += _counter_floor(results, "postgres", OTHER_COUNTER_LIMIT)
    if "redis" in asked:
        found += _crowd(results) or [
            Target("64 concurrent clients on redis", "not measured", "", None)
        ]
    return found


def _calls_table(results: Results) -> list[str]:
    lines = ["storage calls per request (counted in a separate, untimed pass)"]
    for name, found in results.calls.items():
        parts = []
        for scenario in SCENARIOS:
            calls = found.get(scenario, {}).get("storage", {})
            text = "+".join(f"{n:g} {op}" for op, n in calls.items()) or "none"
            redis = found.get(scenario, {}).get("redis")
            if redis:
                text += " [" + "+".join(f"{n:g} {c.upper()}" for c, n in redis.items()) + "]"
            parts.append(f"{scenario} {text}")
        lines.append(f"  {name:<34} " + "; ".join(parts))
    return lines


def render(results: Results) -> str:
    m = results.machine
    lines = [
        f"sessionware benchmark: {m.get('cpus')} CPUs ({m.get('cpu')}), "
        f"{m.get('implementation')} {m.get('python')}, load {_load(m.get('load_before'))}"
        f" before / {_load(m.get('load_after'))} after, {results.seconds:.0f} s",
        "medians of interleaved rounds; µs per request (in-process ASGI, one client); spread is"
        " the interquartile range / median;",
        "cpu µs is this process's CPU time per request (servers' time and other processes' left"
        " out): the steadier number on a busy machine",
        "",
    ]
    for note in results.notes:
        lines.append(f"note: {note}")
    if results.notes:
        lines.append("")
    for scenario in SCENARIOS:
        if scenario in results.scenarios:
            lines.extend([*scenario_table(results, scenario), ""])
    lines.extend(crowd_table(results))
    if results.calls:
        lines.extend([*_calls_table(results), ""])
    lines.append("targets")
    for target in targets(results):
        limit = f"  (target {target.limit})" if target.limit else ""
        lines.append(f"  {target.mark}  {target.name}: {target.measured}{limit}")
    context = floor_context(results)
    if context:
        lines.extend(["", *context])
    if results.failed:
        lines.extend(["", "FAILED CHECKS (their numbers are not shown):"])
        lines.extend(f"  {where}: {why}" for where, why in results.failed.items())
    return "\n".join(lines)


def _load(load: Any) -> str:
    return "?" if not load else "/".join(f"{x:.1f}" for x in load)


def write_json(results: Results, path: Path) -> None:
    def series(found: dict[str, Series]) -> dict[str, Any]:
        return {
            name: {
                "median_us": s.median,
                "cpu_median_us": s.cpu_median,
                "per_second": s.per_second,
                "spread": s.spread,
                "operations": s.operations,
                "samples_us": s.samples,
                "cpu_samples_us": s.cpu,
                "baseline": getattr(results.apps.get(name), "baseline", None),
            }
            for name, s in found.items()
        }

    document = {
        "machine": results.machine,
        "seconds": results.seconds,
        "notes": results.notes,
        "scenarios": {name: series(found) for name, found in results.scenarios.items()},
        "concurrent": {name: series(found) for name, found in results.crowd.items()},
        "calls": results.calls,
        "targets": [
            {"name": t.name, "measured": t.measured, "limit": t.limit, "result": t.mark}
            for t in targets(results)
        ],
        "failed": results.failed,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2) + "\n")
