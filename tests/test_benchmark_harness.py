"""Keeps benchmarks/ from rotting: one tiny run on the memory backend, checked, never timed."""

from __future__ import annotations

from benchmarks.bench import run
from benchmarks.calls import EXPECTED
from benchmarks.driver import Plan
from benchmarks.report import render, targets

TINY = Plan(rounds=3, batch=0.0005, warmup=0.002, min_count=2)


async def test_a_tiny_memory_run_passes_every_correctness_check() -> None:
    results = await run(["memory"], plans=(TINY, TINY), log=lambda line: None)

    assert results.failed == {}
    for scenario, series in results.scenarios.items():
        assert {"bare starlette", "sessionware memory (explicit)"} <= set(series), scenario
        assert all(s.median > 0 and s.operations > 0 for s in series.values()), scenario
    for mode in ("explicit", "auto_save"):
        calls = results.calls[f"sessionware memory ({mode})"]
        assert {scenario: found["storage"] for scenario, found in calls.items()} == {
            scenario: {op: float(n) for op, n in expected.items()}
            for scenario, expected in EXPECTED.items()
        }
    assert targets(results)
    assert "targets" in render(results)
