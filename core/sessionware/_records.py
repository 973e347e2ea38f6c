"""What storage holds under a session's key: a record behind a one-byte format marker.

The marker says how the rest reads, so a record of another format is recognised as such
rather than misread: ``0x01`` a plain record (MessagePack, see `_codec`); ``0x00`` alone is a
tombstone, what an ended session's entry is replaced with by compare-and-set so that no
request still holding it can write it back (R24).
"""

from __future__ import annotations

from typing import Final

from ._codec import DecodeError, RawRecord, Record, SessionCodec

PLAIN: Final = b"\x01"
TOMBSTONE: Final = b"\x00"


class RecordFormat:
    """Turns record bodies into stored bytes and back, for one store."""

    __slots__ = ("codec",)

    def __init__(self, codec: SessionCodec) -> None:
        self.codec = codec

    def pack(self, body: bytes) -> bytes:
        return PLAIN + body

    def body(self, stored: bytes) -> bytes:
        """The record body of stored bytes; DecodeError when they are not one of ours."""
        if stored[:1] != PLAIN:
            raise DecodeError(f"not a session record: format marker {stored[:1]!r}")
        return stored[1:]

    def open(self, stored: bytes) -> Record:
        return self.codec.decode(self.body(stored))

    def open_raw(self, stored: bytes) -> RawRecord:
        return self.codec.decode_raw(self.body(stored))
