"""S9: whoever reads the storage learns no session id (handles) and, with keys, no data
(sealed records); records this configuration cannot open are left alone; keys rotate."""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import subprocess
import sys
import uuid
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sessionware import Config, Store

from tests.support.apps import (
    client,
    clock_of,
    cookie_header,
    do,
    make_app,
    open_store,
    plugin_of,
    raw_get,
    raw_put,
    read,
    serve,
    shared_plugin,
    storage_key,
)
from tests.support.backends import Backend
from tests.support.storage_dumps import dump_storage

K1, K2, K3 = (os.urandom(32) for _ in range(3))
MEMORY = Backend("memory", "memory")
HANDLE_CHARACTERS = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


async def new_session(http: Any, *actions: list[Any]) -> str:
    """A new client's session, saved with `actions`; returns its id."""
    http.cookies.clear()
    session_id: str = (await do(http, *actions, ["save"])).json()["id"]
    return session_id


# -- handles ------------------------------------------------------------------------------


async def test_s9_storage_holds_no_session_id_in_any_key_or_value(
    storage_backend: Backend,
) -> None:
    async with serve(storage_backend) as (store, http):
        ids = [await new_session(http, ["set", "n", n]) for n in range(5)]
        regenerated = await new_session(http, ["set", "n", 9], ["regenerate"])
        ids.append(regenerated)
        dump = await dump_storage(storage_backend, plugin_of(store))
    stored = dump.everything()
    for session_id in ids:
        assert session_id.encode() not in stored
    handles = {storage_key(session_id).encode() for session_id in ids}
    for key, _ in dump.items:
        handle = key.rsplit(b":", 1)[-1] if b":" in key else key
        assert handle in handles
        assert len(handle) == 43
        assert set(handle.decode()) <= HANDLE_CHARACTERS


async def test_s9_the_handle_is_sha256_of_the_id_in_url_safe_base64(
    storage_backend: Backend,
) -> None:
    async with serve(storage_backend) as (store, http):
        session_id = await new_session(http, ["set", "n", 1])
        session = await store.get_by_id(session_id)
        assert session is not None
        assert session.handle == storage_key(session_id)
        assert await raw_get(store, session_id) is not None  # stored under that handle
        await store.delete(session_id)  # delete takes the id, and hashes it
        assert await raw_get(store, session_id) is None


# -- sealed records -----------------------------------------------------------------------


async def test_s9_with_keys_no_stored_byte_shows_the_data(storage_backend: Backend) -> None:
    marker = f"MARKER-{uuid.uuid4().hex}"
    async with serve(storage_backend, encryption_keys=[K1]) as (store, http):
        session_id = await new_session(http, ["set", "note", marker], ["set", marker, 1])
        assert (await read(http, session_id))["data"] == {"note": marker, marker: 1}
        dump = await dump_storage(storage_backend, plugin_of(store))
    stored = dump.everything()
    assert dump.items
    assert marker.encode() not in stored
    assert session_id.encode() not in stored
    assert all(value[:1] == b"\x02" for _, value in dump.items)  # the sealed marker


async def test_s9_a_sealed_record_copied_under_another_handle_opens_nothing(
    storage_backend: Backend,
) -> None:
    async with serve(storage_backend, encryption_keys=[K1]) as (store, http):
        victim = await new_session(http, ["set", "user", "admin"])
        attacker = await new_session(http, ["set", "user", "mallory"])
        sealed = await raw_get(store, victim)
        assert sealed is not None
        await raw_put(store, attacker, sealed)
        body = await read(http, attacker)
        assert body["fresh"] is True
        assert body["data"] == {}
        assert await raw_get(store, attacker) is None  # fails authentication: R17, deleted
        assert (await read(http, victim))["data"] == {"user": "admin"}


@pytest.mark.parametrize("where", ["salt", "ciphertext", "tag", "last-byte-cut"])
async def test_s9_a_sealed_record_altered_by_one_byte_opens_nothing_and_is_deleted(
    storage_backend: Backend, where: str, caplog: pytest.LogCaptureFixture
) -> None:
    async with serve(storage_backend, encryption_keys=[K1]) as (store, http):
        session_id = await new_session(http, ["set", "user", "ann"])
        sealed = await raw_get(store, session_id)
        assert sealed is not None
        damaged = bytearray(sealed)
        position = {"salt": 20, "ciphertext": 50, "tag": len(sealed) - 1}.get(where)
        if position is None:
            damaged = damaged[:-1]
        else:
            damaged[position] ^= 0x01
        await raw_put(store, session_id, bytes(damaged))
        with caplog.at_level(logging.WARNING, logger="sessionware"):
            body = await read(http, session_id)
        assert body["fresh"] is True
        assert body["id"] != session_id
        assert await raw_get(store, session_id) is None
        assert any("authentication" in r.getMessage() for r in caplog.records)


async def test_s9_a_record_sealed_under_an_unlisted_key_is_unknown_and_left_in_storage(
    storage_backend: Backend,
) -> None:
    async with serve(storage_backend, encryption_keys=[K1]) as (old, old_http):
        session_id = await new_session(old_http, ["set", "user", "ann"])
        sealed = await raw_get(old, session_id)
        async with (
            open_store(
                storage_backend,
                storage=shared_plugin(old),
                clock=clock_of(old),
                encryption_keys=[K2],
            ) as other,
            client(make_app(other, auto_save=True)) as http,
        ):
            body = await read(http, session_id)
            assert body["fresh"] is True
            assert await raw_get(other, session_id) == sealed  # never deleted
            assert await other.get_by_id(session_id) is None
        assert (await read(old_http, session_id))["data"] == {"user": "ann"}


@pytest.mark.parametrize("direction", ["plain-read-with-keys", "sealed-read-without-keys"])
async def test_s9_a_record_of_the_other_kind_is_unknown_and_left_in_storage(
    storage_backend: Backend, direction: str
) -> None:
    writer_keys, reader_keys = ([], [K1]) if direction.startswith("plain") else ([K1], [])
    async with serve(storage_backend, encryption_keys=writer_keys) as (writer, writer_http):
        session_id = await new_session(writer_http, ["set", "user", "ann"])
        stored = await raw_get(writer, session_id)
        async with (
            open_store(
                storage_backend,
                storage=shared_plugin(writer),
                clock=clock_of(writer),
                encryption_keys=reader_keys,
            ) as reader,
            client(make_app(reader, auto_save=True)) as http,
        ):
            body = await read(http, session_id)
            assert body["fresh"] is True
            assert await raw_get(reader, session_id) == stored
        assert (await read(writer_http, session_id))["data"] == {"user": "ann"}


async def test_s9_a_two_step_rotation_across_a_fleet_keeps_every_session(
    storage_backend: Backend,
) -> None:
    """[k1] -> [k1, k2] -> [k2, k1], with old and new instances side by side at each step."""
    async with serve(storage_backend, encryption_keys=[K1]) as (old, old_http):
        clock = clock_of(old)

        def instance(*keys: bytes) -> Store:
            return open_store(
                storage_backend,
                storage=shared_plugin(old),
                clock=clock,
                encryption_keys=list(keys),
            )

        before = [await new_session(old_http, ["set", "n", n]) for n in range(3)]
        async with instance(K1, K2) as step_one, client(make_app(step_one)) as one_http:
            # Step one: the new key is listed second everywhere; k1 still seals.
            during = [await new_session(one_http, ["set", "n", n]) for n in range(3, 6)]
            for session_id in before + during:
                assert (await read(old_http, session_id))["fresh"] is False
                assert (await read(one_http, session_id))["fresh"] is False
            async with instance(K2, K1) as step_two, client(make_app(step_two)) as two_http:
                # Step two: k2 seals; step-one instances still open what it writes.
                after = [await new_session(two_http, ["set", "n", n]) for n in range(6, 9)]
                everyone = before + during + after
                for session_id in everyone:
                    assert (await read(one_http, session_id))["fresh"] is False
                    assert (await read(two_http, session_id))["fresh"] is False
                for session_id in before + during:  # their next save re-seals them under k2
                    await do(two_http, ["set", "seen", True], ["save"],
                             headers=cookie_header(session_id))  # fmt: skip
        async with instance(K2) as k2_only, client(make_app(k2_only)) as k2_http:
            for n, session_id in enumerate(everyone):  # k1 can be dropped: nothing needs it
                body = await read(k2_http, session_id)
                assert body["fresh"] is False
                assert body["data"]["n"] == n


async def test_s9_a_migration_with_accept_plain_records_ends_with_every_record_sealed(
    storage_backend: Backend,
) -> None:
    async with serve(storage_backend) as (plain, plain_http):
        ids = [await new_session(plain_http, ["set", "n", n]) for n in range(4)]
        async with (
            open_store(
                storage_backend,
                storage=shared_plugin(plain),
                clock=clock_of(plain),
                encryption_keys=[K1],
                accept_plain_records=True,
            ) as migrating,
            client(make_app(migrating, auto_save=True)) as http,
        ):
            for n, session_id in enumerate(ids):
                body = (
                    await do(http, ["set", "visited", True], headers=cookie_header(session_id))
                ).json()
                assert body["id"] == session_id
                assert body["data"] == {"n": n, "visited": True}
            records = [await raw_get(migrating, session_id) for session_id in ids]
        assert all(record is not None and record[:1] == b"\x02" for record in records)
        async with (
            open_store(
                storage_backend,
                storage=shared_plugin(plain),
                clock=clock_of(plain),
                encryption_keys=[K1],
            ) as sealed_only,
            client(make_app(sealed_only)) as sealed_http,
        ):
            for session_id in ids:  # accept_plain_records can be turned off now
                assert (await read(sealed_http, session_id))["fresh"] is False


# -- keys ---------------------------------------------------------------------------------


def test_s9_keys_are_32_bytes_or_the_text_keygen_prints() -> None:
    text = base64.urlsafe_b64encode(K1).rstrip(b"=").decode()
    assert Config(encryption_keys=[text, K2]).encryption_keys == (K1, K2)


@pytest.mark.parametrize(
    ("keys", "error"),
    [
        ([os.urandom(16)], ValueError),
        (["not a key at all"], ValueError),
        ([base64.urlsafe_b64encode(os.urandom(24)).decode()], ValueError),
        ([42], TypeError),
        (K1, TypeError),  # one key, not a list of keys
    ],
)
def test_s9_a_wrong_key_is_an_error_naming_encryption_keys_and_never_the_key(
    keys: Any, error: type[Exception]
) -> None:
    with pytest.raises(error, match="encryption_keys") as caught:
        Config(encryption_keys=keys)
    for key in keys if isinstance(keys, list) else [keys]:
        if isinstance(key, bytes):
            assert repr(key) not in str(caught.value)
            assert base64.urlsafe_b64encode(key).decode()[:20] not in str(caught.value)
        elif isinstance(key, str):
            assert key not in str(caught.value)


async def test_s9_no_key_appears_in_a_repr_or_a_log_record(
    caplog: pytest.LogCaptureFixture,
) -> None:
    text = base64.urlsafe_b64encode(K1).rstrip(b"=").decode()
    config = Config(encryption_keys=[text, K2])
    with caplog.at_level(logging.DEBUG):
        async with (
            open_store(MEMORY, encryption_keys=[text, K2]) as store,
            client(make_app(store)) as http,
        ):
            session_id = await new_session(http, ["set", "n", 1])
            await raw_put(store, session_id, b"\x02" + bytes(100))  # a failing record: logged
            await read(http, session_id)
            shown = [repr(config), str(config), repr(store), repr(store.config)]
    shown += [record.getMessage() for record in caplog.records]
    for key in (K1, K2):
        for form in (repr(key), key.hex(), base64.urlsafe_b64encode(key).decode()[:40], text):
            assert all(form not in line for line in shown)


def test_s9_keygen_prints_a_new_key_that_config_accepts() -> None:
    def keygen() -> str:
        result = subprocess.run(
            [sys.executable, "-m", "sessionware", "keygen"],
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        )
        return result.stdout.strip()

    first, second = keygen(), keygen()
    assert len(first) == 43
    assert first != second
    assert len(Config(encryption_keys=[first, second]).encryption_keys[0]) == 32


def test_s9_keys_without_cryptography_installed_name_the_extra(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for module in list(sys.modules):
        if module == "cryptography" or module.startswith("cryptography."):
            monkeypatch.delitem(sys.modules, module)
    monkeypatch.setitem(sys.modules, "cryptography", None)  # what an absent package gives
    with pytest.raises(ImportError, match=r"sessionware\[encryption\]"):
        Store(Config(encryption_keys=[K1]))


# -- fuzzing ------------------------------------------------------------------------------


@settings(
    max_examples=int(os.environ.get("SESSIONWARE_FUZZ_EXAMPLES", "200")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    tail=st.binary(max_size=512),
    known_key_id=st.booleans(),
)
def test_s9_arbitrary_bytes_as_sealed_records_never_raise_and_never_open(
    tail: bytes, known_key_id: bool
) -> None:
    async def scenario() -> None:
        async with (
            open_store(MEMORY, encryption_keys=[K3]) as store,
            client(make_app(store)) as http,
        ):
            session_id = await new_session(http, ["set", "n", 1])
            genuine = await raw_get(store, session_id)
            assert genuine is not None
            head = genuine[:9] if known_key_id else b"\x02"  # the marker, and the key id
            await raw_put(store, session_id, head + tail)
            assert await store.get_by_id(session_id) is None
            response = await http.get("/read", headers=cookie_header(session_id))
            assert response.status_code == 200
            assert response.json()["fresh"] is True

    asyncio.run(scenario())
