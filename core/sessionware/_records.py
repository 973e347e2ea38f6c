"""What storage holds under a session's handle: a record behind a one-byte format marker.

The marker says how the rest reads, so a record of another format is recognised as such
rather than misread: ``0x01`` a plain record (MessagePack, see `_codec`), ``0x02`` a sealed
one (see `_sealing`), and ``0x00`` alone a tombstone, what an ended session's entry is
replaced with by compare-and-set so that no request still holding it writes it back (R24).

Which records a configuration opens (S9): without keys, plain ones; with keys, sealed ones
under a listed key, and plain ones only with `accept_plain_records`. Anything else that is
well formed is `Unopenable`: treated as unknown and left in storage, so instances of a
rolling deploy never destroy each other's sessions.
"""

from __future__ import annotations

from typing import Final

from ._codec import DecodeError, RawRecord, Record, SessionCodec
from ._sealing import SEALED, Sealer, Unopenable

PLAIN: Final = b"\x01"
TOMBSTONE: Final = b"\x00"

__all__ = ["PLAIN", "SEALED", "TOMBSTONE", "RecordFormat", "Unopenable"]


class RecordFormat:
    """Turns record bodies into stored bytes and back, for one store's configuration."""

    __slots__ = ("_accept_plain", "_sealer", "codec")

    def __init__(self, codec: SessionCodec, sealer: Sealer | None, accept_plain: bool) -> None:
        self.codec = codec
        self._sealer = sealer
        self._accept_plain = sealer is None or accept_plain

    def pack(self, body: bytes, handle: str) -> bytes:
        """Stored bytes for a record body: sealed under the first key, when keys are set."""
        if self._sealer is None:
            return PLAIN + body
        return self._sealer.seal(body, handle)

    def body(self, stored: bytes, handle: str) -> bytes:
        """The record body of stored bytes: `DecodeError` when they are not a record (R17),
        `Unopenable` when they are one this configuration must leave alone (S9)."""
        marker = stored[:1]
        if marker == PLAIN:
            if not self._accept_plain:
                raise Unopenable("a plain record, while encryption_keys are set")
            return stored[1:]
        if marker == SEALED:
            if self._sealer is None:
                raise Unopenable("a sealed record, while no encryption_keys are set")
            return self._sealer.open(stored, handle)
        raise DecodeError(f"not a session record: format marker {marker!r}")

    def open(self, body: bytes) -> Record:
        return self.codec.decode(body)

    def opened(self, stored: bytes, handle: str) -> tuple[Record, bytes]:
        """The record stored bytes hold, and its body (see `body` for the errors)."""
        if stored[:1] == PLAIN and self._accept_plain and self._sealer is None:
            body = stored[1:]  # the common case, without keys: no further checks to make
        else:
            body = self.body(stored, handle)
        return self.codec.decode(body), body

    def open_raw(self, body: bytes) -> RawRecord:
        return self.codec.decode_raw(body)
