"""How long a session lives: its TTL, the absolute limit, and when a read renews it.

R12 (a session's own expiry), R13 (expiry and the absolute timeout) and R22 (renewal on
read) in one place, as plain arithmetic on unix seconds.
"""

from __future__ import annotations

from ._config import Config

# Renewing an entry is worth a write only when it gains at least this much lifetime.
MIN_RENEWAL_GAIN = 1.0


class Lifetime:
    """The lifetime policy of one `Config`."""

    __slots__ = ("absolute", "expiration")

    def __init__(self, config: Config) -> None:
        self.expiration = config.expiration.total_seconds()
        absolute = config.absolute_timeout
        self.absolute = None if absolute is None else absolute.total_seconds()

    def ttl(self, expiry: float, created: float, now: float) -> float:
        """R13: the session's expiry, capped by what is left of its absolute lifetime."""
        if self.absolute is None:
            return expiry
        return min(expiry, created + self.absolute - now)

    def is_over(self, created: float, expires_at: float, now: float) -> bool:
        """Expired (R13), or older than the absolute timeout."""
        return expires_at <= now or (self.absolute is not None and created + self.absolute <= now)

    def renewal_due(self, expiry: float, created: float, expires_at: float, now: float) -> bool:
        """R22: less than half of the expiry is left, and a renewal would gain a second."""
        if expires_at - now >= expiry / 2:
            return False
        return now + self.ttl(expiry, created, now) > expires_at + MIN_RENEWAL_GAIN
