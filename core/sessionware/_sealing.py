"""Sealed records (S9): whoever reads the storage reads no session data.

The construction is AES-256-GCM under a key derived for each record: keyed BLAKE2b (a PRF,
RFC 7693) of 32 random bytes (the salt, stored with the record) under the configured key gives
a key that seals exactly one record, under an all-zero nonce, with the record's handle as
associated data. BLAKE2b rather than HMAC-SHA256 for the derivation: half the time per call
here, and the derivation runs on every seal and every open.
Why not AES-GCM with random 96-bit nonces under the configured key: NIST caps that at 2^32
records per key (a nonce collision in GCM reveals plaintext and lets an attacker forge), which
a busy site writes in days. Here no key is ever used twice, so the only way two records share
a key and nonce is two equal salts: at 2^48 records under one configured key the chance is
at most 2^96 / 2^257 = 2^-161. Sealing or opening a 1 KB record costs a few µs, no more than
AES-256-GCM-SIV with a random nonce (docs/benchmarks.md, "Sealed records").

A sealed record reads: marker ``0x02``, the key id (8 bytes, derived from the key itself, so
the right key is found without trying each), the salt, then ciphertext and tag.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from typing import Final

from ._codec import DecodeError

SEALED: Final = b"\x02"
_KEY_ID_BYTES: Final = 8
_SALT_BYTES: Final = 32
_HEADER: Final = 1 + _KEY_ID_BYTES + _SALT_BYTES
_NONCE: Final = bytes(12)  # every derived key seals one record: a fixed nonce is safe
_RECORD_KEY_PERSON: Final = b"sw record key"  # BLAKE2b domain separation (≤ 16 bytes)
_KEY_ID_LABEL: Final = b"sessionware key id"


class Unopenable(Exception):
    """A well-formed sealed record under a key this configuration does not list."""


def _record_key(master: bytes, salt: bytes) -> bytes:
    """The key that seals the one record stored with `salt`."""
    return hashlib.blake2b(salt, digest_size=32, key=master, person=_RECORD_KEY_PERSON).digest()


def key_id(key: bytes) -> bytes:
    return hmac.digest(key, _KEY_ID_LABEL, "sha256")[:_KEY_ID_BYTES]


class Sealer:
    """Seals under the first configured key; opens under any of them."""

    __slots__ = ("_aead", "_by_id", "_invalid_tag", "_sealing_id", "_sealing_key")

    def __init__(self, keys: tuple[bytes, ...]) -> None:
        try:
            from cryptography.exceptions import InvalidTag
            from cryptography.hazmat.primitives.ciphers.aead import AESGCM
        except ImportError:
            raise ImportError(
                "Config.encryption_keys needs the cryptography package; install it with "
                '`pip install "sessionware[encryption]"`'
            ) from None
        self._aead = AESGCM
        self._invalid_tag = InvalidTag
        self._sealing_key = keys[0]
        self._sealing_id = key_id(keys[0])
        self._by_id = {key_id(key): key for key in keys}

    def __repr__(self) -> str:
        return f"<Sealer keys={len(self._by_id)}>"

    def seal(self, body: bytes, handle: str) -> bytes:
        salt = os.urandom(_SALT_BYTES)
        key = _record_key(self._sealing_key, salt)
        sealed = self._aead(key).encrypt(_NONCE, body, handle.encode())
        return SEALED + self._sealing_id + salt + sealed

    def open(self, stored: bytes, handle: str) -> bytes:
        """The body of a sealed record; Unopenable under an unlisted key, DecodeError when it
        fails its authentication (altered, truncated, or copied from another handle)."""
        if len(stored) < _HEADER + 16:
            raise DecodeError("a sealed record too short to hold its header and tag")
        master = self._by_id.get(stored[1 : 1 + _KEY_ID_BYTES])
        if master is None:
            raise Unopenable("a record sealed under a key this configuration does not list")
        salt = stored[1 + _KEY_ID_BYTES : _HEADER]
        key = _record_key(master, salt)
        try:
            body: bytes = self._aead(key).decrypt(_NONCE, stored[_HEADER:], handle.encode())
        except self._invalid_tag:
            raise DecodeError("a sealed record that fails its authentication") from None
        return body
