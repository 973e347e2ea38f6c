"""The one clock the session rules read: unix seconds, replaceable in tests.

Every rule about time (expiry, absolute timeout, renewal) asks the store's clock, so a test
moves a fake clock forward instead of sleeping. Storage backends keep their own clocks for
TTLs; those are tested by the conformance suite, on real time.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Final

Clock = Callable[[], float]

SYSTEM_CLOCK: Final[Clock] = time.time
