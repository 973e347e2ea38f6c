"""What a key and a TTL look like on the wire, within memcached's rules."""

from __future__ import annotations

import hashlib
import math

from ._config import MAX_KEY_LENGTH

#: memcached reads an expiry above 30 days as a unix time, not as seconds from now.
MAX_RELATIVE_EXPIRY = 30 * 24 * 3600
#: memcached's own word for "already expired".
EXPIRED = -1
#: memcached's own word for "never expires".
NEVER = 0


class KeyMapper:
    """Turns a storage key into a memcached key under the prefix.

    A key that is printable ASCII without spaces, does not start with "#" and fits within
    250 bytes with the prefix is used as it is: a session's handle (43 characters) and the
    core's own keys (`~o.` + 43 for an owner index) fit under any allowed prefix. Any other
    key is stored as prefix + "#" + its SHA-256 in hex, so every key works and no two keys
    meet.
    """

    __slots__ = ("_longest", "_prefix")

    def __init__(self, prefix: str) -> None:
        self._prefix = prefix
        self._longest = MAX_KEY_LENGTH - len(prefix)

    def __call__(self, key: str) -> str:
        if (
            0 < len(key) <= self._longest
            and key.isascii()
            and key.isprintable()
            and " " not in key
            and key[0] != "#"
        ):
            return self._prefix + key
        digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()
        return f"{self._prefix}#{digest}"


def wire_expiry(expires_in: float | None, now: float) -> int:
    """The `exptime` memcached needs so an entry lives at least `expires_in` seconds.

    memcached counts whole seconds on a clock that ticks once a second, so an entry given
    N seconds lives between N-1 and N: one second is added on top of rounding up, and 0.3
    becomes 2 (never 0, memcached's "never"). Beyond 30 days memcached wants a unix time
    (`now` is `time.time()`). None never expires; 0 or less is gone at once.
    """
    if expires_in is None:
        return NEVER
    if not math.isfinite(expires_in):
        raise ValueError(f"memcache storage: expires_in must be finite seconds, got {expires_in}")
    if expires_in <= 0:
        return EXPIRED
    seconds = math.ceil(expires_in) + 1
    if seconds <= MAX_RELATIVE_EXPIRY:
        return seconds
    return math.ceil(now + expires_in) + 1
