"""Keys and expiry times as memcached receives them."""

from __future__ import annotations

import pytest
from sessionware_memcache._wire import MAX_RELATIVE_EXPIRY, KeyMapper, wire_expiry

NOW = 1_700_000_000.25
DAY = 24 * 3600


@pytest.mark.parametrize(
    ("expires_in", "sent"),
    [
        (None, 0),
        (0.3, 2),
        (1, 2),
        (1.0001, 3),
        (60, 61),
        (24 * 3600, 24 * 3600 + 1),
        (MAX_RELATIVE_EXPIRY - 1, MAX_RELATIVE_EXPIRY),
    ],
)
def test_short_ttls_are_relative_whole_seconds_rounded_up(
    expires_in: float | None, sent: int
) -> None:
    assert wire_expiry(expires_in, NOW) == sent


def test_ttls_over_30_days_are_absolute_unix_times() -> None:
    # ceil(now + ttl), plus the one second of clock margin
    assert wire_expiry(40 * DAY, NOW) == 1_700_000_002 + 40 * DAY
    assert wire_expiry(MAX_RELATIVE_EXPIRY, NOW) == 1_700_000_002 + MAX_RELATIVE_EXPIRY


def test_a_ttl_never_becomes_zero_which_means_never() -> None:
    assert all(wire_expiry(t, NOW) >= 2 for t in (1e-9, 0.001, 0.5, 0.999))


def test_a_ttl_of_zero_or_less_is_already_expired() -> None:
    assert wire_expiry(0, NOW) == -1
    assert wire_expiry(-5, NOW) == -1


@pytest.mark.parametrize("bad", [float("inf"), float("nan")])
def test_non_finite_ttl_is_a_value_error(bad: float) -> None:
    with pytest.raises(ValueError, match="expires_in"):
        wire_expiry(bad, NOW)


def test_every_key_the_core_uses_is_used_as_it_is() -> None:
    key = KeyMapper("sessionware:")
    handle = "n4bQgYhMfWWaL-qgxVrQFaO_TxsrC4Is0V1sFbDwCgg"
    for core_key in [handle, "~o." + handle, "A", "az-AZ_09.~+/=", "x" * 128]:
        assert key(core_key) == "sessionware:" + core_key


@pytest.mark.parametrize(
    "odd", ["", "with space", "tab\tkey", "new\nline", "é", "#looks-hashed", "x" * 239]
)
def test_other_keys_are_hashed_into_a_safe_key(odd: str) -> None:
    mapped = KeyMapper("sessionware:")(odd)
    assert mapped.startswith("sessionware:#")
    assert len(mapped) == len("sessionware:#") + 64
    assert mapped.isascii()
    assert mapped.isprintable()
    assert " " not in mapped


def test_the_longest_plain_key_fills_250_bytes() -> None:
    key = KeyMapper("sessionware:")
    assert key("x" * 238) == "sessionware:" + "x" * 238
    assert key("x" * 239) != "sessionware:" + "x" * 239


def test_hashed_keys_never_meet_plain_ones() -> None:
    key = KeyMapper("p:")
    hashed = key("with space")
    assert key(hashed[len("p:") :]) != hashed
