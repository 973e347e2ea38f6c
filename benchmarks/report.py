"""The printed report: a table per scenario, the crowd, and every target with PASS or MISS."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import flask_apps, flask_bench
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
SEALING_BUDGET_US = 12.0
BACKENDS = ("memory", "redis", "sqlite", "memcache", "postgres")
W = 44  # the width of an app's name in the tables


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
        f"  {name:<{W}} {s.median:9.1f} {s.per_second:>10,.0f} {extra:>9} {times:>6}"
        f" {s.spread * 100:6.1f}% {s.cpu_median:8.1f}"
    )


def scenario_table(
    results: Results, scenario: str, flask: bool = False, title: str = ""
) -> list[str]:
    found = results.flask if flask else results
    if found is None:
        return []
    series = found.scenarios.get(scenario, {})
    apps = found.apps
    lines = [
        f"{title}{scenario}: {SCENARIOS[scenario]}",
        f"  {'app':<{W}} {'µs/req':>9} {'req/s':>10} {'+µs bare':>9} {'xbare':>6} {'spread':>7}"
        f" {'cpu µs':>8}",
    ]
    for name, s in series.items():
        bench = apps.get(name)
        if bench is None:  # a raw client pair: the floor, not an app
            continue
        base = None if bench.family == "bare" else series.get(bench.baseline)
        lines.append(_row(name, s, base))
    raw = [(name, s) for name, s in series.items() if name not in apps]
    if raw:
        lines.append(f"  {'raw client pair (no app)':<{W}} {'µs/pair':>9} {'pairs/s':>10}")
        lines.extend(_row(name, s, None) for name, s in raw)
    return lines


def crowd_table(results: Results) -> list[str]:
    lines: list[str] = []
    for scenario, series in results.crowd.items():
        lines.append(f"{CROWD} concurrent clients on redis, {scenario}: throughput")
        lines.append(f"  {'app':<{W}} {'req/s':>10} {'µs/req':>9} {'spread':>7} {'cpu µs':>8}")
        for name, s in series.items():
            lines.append(
                f"  {name:<{W}} {s.per_second:>10,.0f} {s.median:9.1f} {s.spread * 100:6.1f}%"
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
        if bench.family != "sessionware" or not bench.runs("untouched"):
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
        commands = results.calls.get(name, {}).get("read", {}).get("server")
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


def _sealing(results: Results) -> list[Target]:
    """S9: what sealing and opening a 1 KB record add to a memory counter."""
    series = results.scenarios.get("counter", {})
    plain = _median(series, sessionware_name("memory", "explicit", "1 KB"))
    sealed = _median(series, sessionware_name("memory", "explicit", "1 KB sealed"))
    label = "sessionware memory 1 KB sealed counter over the same unsealed"
    if plain is None or sealed is None:
        return [Target(label, "not measured", "", None)]
    added = sealed - plain
    return [
        Target(
            label,
            f"{added:+.1f} µs ({sealed:.1f} vs {plain:.1f} µs), one open and one seal",
            f"≤ {SEALING_BUDGET_US:g} µs",
            added <= SEALING_BUDGET_US,
        )
    ]


def _calls_text(results: Results, name: str, scenario: str) -> str:
    found = results.calls.get(name, {}).get(scenario)
    if found is None:
        return "?"
    text = "+".join(f"{n:g} {op}" for op, n in found.get("storage", {}).items()) or "none"
    server = found.get("server")
    if server:
        text += " [" + "+".join(f"{n:g} {c.upper()}" for c, n in server.items()) + "]"
    return text


def _beside(results: Results, scenario: str, ours: str, plain: str) -> str | None:
    """`ours` against `plain` in one scenario: µs each, the difference, and their calls."""
    series = results.scenarios.get(scenario, {})
    a, b = series.get(ours), series.get(plain)
    if a is None or b is None:
        return None
    return (
        f"    {scenario:<8} {a.median:8.1f} vs {b.median:8.1f} µs  {a.median - b.median:+7.1f} µs"
        f"  calls {_calls_text(results, ours, scenario)} vs {_calls_text(results, plain, scenario)}"
    )


def owner_section(results: Results) -> list[str]:
    """S10: a login that names an owner, and read and counter with owner_key configured,
    each against the same backend's plain app (explicit save)."""
    return _beside_section(
        results,
        "owner index (S10): owner_key set against not set, explicit save; each login names "
        "a new owner",
        ("owner_key", ""),
        ("login", "read", "counter"),
    )


def compare_and_set_section(results: Results) -> list[str]:
    """R21: saving by compare-and-set against the same plugin with that hook hidden."""
    return _beside_section(
        results,
        "compare-and-set: saves by compare-and-set against plain sets (the hook hidden), "
        "explicit save",
        ("", "without CAS"),
        ("counter", "login"),
    )


def _beside_section(
    results: Results, title: str, labels: tuple[str, str], scenarios: tuple[str, ...]
) -> list[str]:
    """Per backend, the app of `labels[0]` against that of `labels[1]` (explicit save)."""
    lines = []
    for backend in BACKENDS:
        ours = sessionware_name(backend, "explicit", labels[0])
        plain = sessionware_name(backend, "explicit", labels[1])
        rows = [_beside(results, scenario, ours, plain) for scenario in scenarios]
        if any(rows):
            lines.append(f"  {backend}")
            lines.extend(row for row in rows if row)
    return [title, *lines] if lines else []


def _owner_calls(results: Results) -> list[Target]:
    """S10: read and counter make the same storage calls whether owner_key is set or not."""
    targets = []
    for backend in results.backends:
        ours = sessionware_name(backend, "explicit", "owner_key")
        plain = sessionware_name(backend, "explicit")
        if ours not in results.calls or plain not in results.calls:
            continue
        same = all(
            results.calls[ours].get(scenario) == results.calls[plain].get(scenario)
            for scenario in ("read", "counter")
        )
        deltas = []
        for scenario in ("read", "counter"):
            series = results.scenarios.get(scenario, {})
            if ours in series and plain in series:
                deltas.append(f"{scenario} {series[ours].median - series[plain].median:+.1f} µs")
        targets.append(
            Target(
                f"{ours} read and counter: calls as without owner_key",
                ("same calls" if same else "other calls")
                + (f"; {', '.join(deltas)}" if deltas else ""),
                "the same calls",
                same,
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


FLASK_REDIS_COUNTER_LIMIT = 1.10
FLASK_SHARE_OF_COOKIE = 0.5


def flask_targets(results: Results) -> list[Target]:
    """S11: untouched Flask requests make no storage call; the redis counter near its floor
    and ahead of Flask-Session; on memory, half of Flask's cookie session's overhead."""
    flask = results.flask
    if flask is None or not flask.apps:
        return []
    found: list[Target] = []
    for name, bench in flask.apps.items():
        if bench.family != "sessionware":
            continue
        calls = flask.calls.get(name, {}).get("untouched")
        label = f"{name} untouched"
        if calls is None:
            found.append(Target(label, "not counted", "", None))
            continue
        made = {**calls.get("storage", {}), **calls.get("server", {})}
        text = "+".join(f"{n:g} {op}" for op, n in made.items()) or "0"
        found.append(Target(label, f"{text} storage calls", "0 calls", not made))
    counter = flask.scenarios.get("counter", {})
    bare = _median(counter, flask_apps.BARE)
    raw = [s for name, s in counter.items() if name.startswith("raw redis GET + SET (sync")]
    peer = _median(counter, "flask-session redis")
    for mode in flask_bench.MODES:
        name = flask_bench.sessionware_name("redis", mode)
        median = _median(counter, name)
        label = f"{name} counter vs bare flask + raw sync pair"
        if median is None or bare is None or not raw:
            found.append(Target(label, "not measured", "", None))
            continue
        ratio = median / (bare + raw[0].median)
        versus = f"; flask-session redis {peer / (bare + raw[0].median):.3f}x" if peer else ""
        found.append(
            Target(
                label,
                f"{median:.1f} µs / ({bare:.1f} + {raw[0].median:.1f}) = {ratio:.3f}x{versus}",
                f"≤ {FLASK_REDIS_COUNTER_LIMIT:.2f}x, faster than flask-session",
                ratio <= FLASK_REDIS_COUNTER_LIMIT and (peer is None or median < peer),
            )
        )
    for scenario in ("read", "counter"):
        series = flask.scenarios.get(scenario, {})
        bare = _median(series, flask_apps.BARE)
        cookie = _median(series, "flask cookie sessions")
        for mode in flask_bench.MODES:
            name = flask_bench.sessionware_name("memory", mode)
            median = _median(series, name)
            label = f"{name} {scenario} overhead vs flask cookie sessions"
            if median is None or bare is None or cookie is None:
                found.append(Target(label, "not measured", "", None))
                continue
            ours, theirs = median - bare, cookie - bare
            share = ours / theirs if theirs > 0 else float("inf")
            found.append(
                Target(
                    label,
                    f"{ours:.1f} µs vs {theirs:.1f} µs = {share:.2f}x",
                    f"≤ {FLASK_SHARE_OF_COOKIE:.2f}x",
                    share <= FLASK_SHARE_OF_COOKIE,
                )
            )
    return found


def flask_section(results: Results) -> list[str]:
    flask = results.flask
    if flask is None or not flask.scenarios:
        return []
    lines = [
        "WSGI: Flask apps called in-process through WSGI, no server; sessionware through "
        "sessionware.flask.Sessionware",
        "",
    ]
    for scenario in SCENARIOS:
        if scenario in flask.scenarios:
            lines.extend([*scenario_table(results, scenario, flask=True, title="flask "), ""])
    if flask.calls:
        title = "flask: storage calls per request (in brackets, the commands sent to redis)"
        lines.extend([*_calls_table(flask.calls, title), ""])
    return lines


def targets(results: Results) -> list[Target]:
    """Every target that the backends asked for in this run make measurable."""
    asked = set(results.backends)
    found = _untouched(results)
    if "memory" in asked:
        found += _memory(results)
        found += _sealing(results)
    if "redis" in asked:
        found += _counter_floor(results, "redis", REDIS_COUNTER_LIMIT)
        found += _redis_read_round_trips(results)
    if "sqlite" in asked:
        found += _counter_floor(results, "sqlite", OTHER_COUNTER_LIMIT)
    if "memcache" in asked:
        found += _counter_floor(results, "memcache", OTHER_COUNTER_LIMIT)
    if "postgres" in asked:
        found += _counter_floor(results, "postgres", OTHER_COUNTER_LIMIT)
    found += _owner_calls(results)
    found += flask_targets(results)
    if "redis" in asked:
        found += _crowd(results) or [
            Target("64 concurrent clients on redis", "not measured", "", None)
        ]
    return found


def _calls_table(calls: dict[str, dict[str, Any]], title: str) -> list[str]:
    lines = [title]
    for name, found in calls.items():
        parts = []
        for scenario in SCENARIOS:
            if scenario not in found:
                continue
            text = "+".join(f"{n:g} {op}" for op, n in found[scenario]["storage"].items())
            server = found[scenario].get("server")
            if server:
                commands = "+".join(f"{n:g} {c.upper()}" for c, n in server.items())
                text = f"{text} [{commands}]" if text else f"[{commands}]"
            parts.append(f"{scenario} {text or 'none'}")
        lines.append(f"  {name:<{W}} " + "; ".join(parts))
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
        title = (
            "storage calls per request (counted in a separate, untimed pass; in brackets, the"
            " commands sent to the server)"
        )
        lines.extend([*_calls_table(results.calls, title), ""])
    for section in (
        owner_section(results),
        compare_and_set_section(results),
        flask_section(results),
    ):
        if section:
            lines.extend([*section, ""])
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
        "flask": None
        if results.flask is None
        else {
            "scenarios": {name: series(found) for name, found in results.flask.scenarios.items()},
            "calls": results.flask.calls,
        },
        "targets": [
            {"name": t.name, "measured": t.measured, "limit": t.limit, "result": t.mark}
            for t in targets(results)
        ],
        "failed": results.failed,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2) + "\n")
