"""Session ids: what a valid one looks like (R4), new ones, and their storage handles (S9)."""

from __future__ import annotations

import base64
import functools
import hashlib
import re
from collections.abc import Callable
from typing import Final

_VALID_ID: Final = re.compile(r"[A-Za-z0-9\-_.~+/=]{1,128}")


def is_valid_id(value: str) -> bool:
    """R4: 1-128 characters of ``A-Z a-z 0-9 - _ . ~ + / =``."""
    return _VALID_ID.fullmatch(value) is not None


def check_id_argument(session_id: object, method: str) -> None:
    """An id given to a store method: a str, and not empty (R4 judges the rest)."""
    if not isinstance(session_id, str):
        raise TypeError(f"store.{method}() takes the session id as a str")
    if not session_id:
        raise ValueError(f"store.{method}() needs a session id, got an empty string")


def new_id(key_generator: Callable[[], str]) -> str:
    """A new id from the configured generator, refused when it breaks R4."""
    session_id = key_generator()
    if not isinstance(session_id, str) or not is_valid_id(session_id):
        raise ValueError(
            f"Config.key_generator returned {session_id!r}; a session id is 1-128 "
            "characters of A-Z a-z 0-9 - _ . ~ + / ="
        )
    return session_id


@functools.lru_cache(maxsize=4096)
def handle_of(session_id: str) -> str:
    """Where storage keeps a session: the unpadded URL-safe base64 of the SHA-256 of its id.

    Whoever reads the storage learns no id that would open a session. 43 characters, none of
    them ``~``, which starts the core's own keys. The ids of the sessions in use are
    hashed again and again, so recent ones are remembered (a tenth of the cost).
    """
    digest = hashlib.sha256(session_id.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")
