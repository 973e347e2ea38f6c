"""Storage resolution (S5): by name, by URL, by object; and every way it can go wrong."""

from __future__ import annotations

import importlib
import sys
import types
from pathlib import Path
from typing import Any

import pluggy
import pytest
import sessionware
from sessionware import (
    Config,
    StorageError,
    StorageLoadError,
    StorageNotFoundError,
    Store,
)
from sessionware.hookspecs import CompareAndSetStorage, Storage
from sessionware.testing import StorageCalls

from tests.support.fake_dists import write_distribution

hookimpl = sessionware.hookimpl


class Complete:
    def __init__(self) -> None:
        self.data: dict[str, bytes] = {}

    @hookimpl
    async def storage_get(self, key: str) -> bytes | None:
        return self.data.get(key)

    @hookimpl
    async def storage_set(self, key: str, value: bytes, expires_in: float | None) -> None:
        self.data[key] = bytes(value)

    @hookimpl
    async def storage_delete(self, key: str) -> None:
        self.data.pop(key, None)

    @hookimpl
    async def storage_reset(self) -> None:
        self.data.clear()

    @hookimpl
    async def storage_close(self) -> None:
        pass


def test_default_store_uses_memory() -> None:
    assert Store().backend == "memory"


@pytest.mark.parametrize("storage", ["memory", " Memory ", "MEMORY", "memory://"])
def test_memory_is_found_by_name_or_url(storage: str) -> None:
    assert Store(Config(storage=storage)).backend == "memory"


def test_unknown_name_lists_installed_and_says_how_to_install() -> None:
    with pytest.raises(StorageNotFoundError) as caught:
        Store(Config(storage="nosuchstore"))
    message = str(caught.value)
    assert "'nosuchstore'" in message
    assert "installed: " in message
    assert "memory" in message
    assert "pip install" in message


def test_missing_known_backend_names_its_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    from sessionware import _loader

    monkeypatch.setattr(_loader, "installed_storages", lambda: {})
    with pytest.raises(StorageNotFoundError, match=r'pip install "sessionware\[redis\]"'):
        Store(Config(storage="redis://127.0.0.1:6379/0"))


def test_url_with_unknown_scheme_is_not_found() -> None:
    with pytest.raises(StorageNotFoundError, match="'nosuchscheme'"):
        Store(Config(storage="nosuchscheme://host/db"))


def test_options_the_factory_rejects_are_raised_unchanged() -> None:
    with pytest.raises(ValueError, match="gc_interval"):
        Store(Config(storage="memory", storage_options={"gc_interval": -1}))
    with pytest.raises(TypeError, match="colour"):
        Store(Config(storage="memory", storage_options={"colour": "blue"}))


def test_url_given_twice_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="url"):
        Store(Config(storage="memory://", storage_options={"url": "memory://"}))


def test_options_with_a_plugin_object_are_refused() -> None:
    with pytest.raises(ValueError, match="storage_options"):
        Store(Config(storage=Complete(), storage_options={"x": 1}))


def test_a_plugin_object_is_used_as_given() -> None:
    plugin = Complete()
    store = Store(Config(storage=plugin))
    assert store.backend == "Complete"


def test_an_object_without_hooks_is_rejected_naming_them() -> None:
    with pytest.raises(pluggy.PluginValidationError) as caught:
        Store(Config(storage=object()))
    for hook in ("storage_get", "storage_set", "storage_delete", "storage_reset"):
        assert hook in str(caught.value)


def test_a_misspelt_hook_is_reported_naming_the_plugin_by_its_class() -> None:
    class Misspelt(Complete):
        @hookimpl
        async def storage_gett(self, key: str) -> bytes | None:
            return None

    with pytest.raises(pluggy.PluginValidationError) as caught:
        Store(Config(storage=Misspelt()))
    assert str(caught.value).startswith(
        "storage plugin 'Misspelt': unknown hook 'storage_gett'; did you mean 'storage_get'?"
    )


def test_a_hook_with_a_wrong_argument_is_reported() -> None:
    class WrongArgument(Complete):
        @hookimpl
        async def storage_delete(self, name: str) -> None:  # type: ignore[override]
            return None

    with pytest.raises(pluggy.PluginValidationError, match="name"):
        Store(Config(storage=WrongArgument()))


def test_a_synchronous_hook_is_rejected() -> None:
    class Blocking(Complete):
        @hookimpl
        def storage_close(self) -> None:  # type: ignore[override]
            return None

    with pytest.raises(pluggy.PluginValidationError, match="async def"):
        Store(Config(storage=Blocking()))


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    return tmp_path


def test_a_plugin_that_fails_to_import_names_its_distribution(site: Path) -> None:
    write_distribution(
        site,
        "sessionware-broken",
        "1.2.3",
        {"broken": "broken_storage:Storage"},
        {"broken_storage": "import a_module_that_does_not_exist\n"},
    )
    with pytest.raises(StorageLoadError) as caught:
        Store(Config(storage="broken"))
    message = str(caught.value)
    assert "sessionware-broken" in message
    assert "1.2.3" in message
    assert "a_module_that_does_not_exist" in message
    assert isinstance(caught.value.__cause__, ModuleNotFoundError)
    sys.modules.pop("broken_storage", None)


def test_two_distributions_claiming_one_name_are_both_named(site: Path) -> None:
    for dist in ("sessionware-first", "sessionware-second"):
        write_distribution(site, dist, "0.1", {"twin": "twin_storage:Storage"}, {})
    with pytest.raises(StorageLoadError) as caught:
        Store(Config(storage="twin"))
    assert "sessionware-first" in str(caught.value)
    assert "sessionware-second" in str(caught.value)


def test_an_installed_third_party_plugin_is_found_and_given_its_options(site: Path) -> None:
    source = (
        "from tests.test_plugin_loading import Complete\n"
        "class Storage(Complete):\n"
        "    def __init__(self, *, url=None, flavour='plain'):\n"
        "        super().__init__()\n"
        "        self.url, self.flavour = url, flavour\n"
    )
    write_distribution(
        site,
        "sessionware-third",
        "2.0",
        {"third": "third_storage:Storage"},
        {"third_storage": source},
    )
    store = Store(Config(storage="third://somewhere"))
    assert store.backend == "third"
    store = Store(Config(storage="third", storage_options={"flavour": "salted"}))
    assert store.backend == "third"
    sys.modules.pop("third_storage", None)


class Failing(Complete):
    @hookimpl
    async def storage_get(self, key: str) -> bytes | None:
        raise ConnectionRefusedError("nobody home")

    @hookimpl
    async def storage_set(self, key: str, value: bytes, expires_in: float | None) -> None:
        raise TimeoutError("too slow")


async def test_plugin_exceptions_become_storage_errors_naming_the_backend() -> None:
    facade = StorageCalls(Failing(), "flaky")
    with pytest.raises(StorageError) as caught:
        await facade.get("abc")
    assert caught.value.backend == "flaky"
    assert "flaky" in str(caught.value)
    assert "nobody home" in str(caught.value)
    assert isinstance(caught.value.__cause__, ConnectionRefusedError)
    with pytest.raises(StorageError, match="too slow"):
        await facade.set("abc", b"x", 1)


async def test_a_plugin_returning_something_other_than_bytes_is_a_storage_error() -> None:
    class Texty(Complete):
        @hookimpl
        async def storage_get(self, key: str) -> Any:
            return "not bytes"

    with pytest.raises(StorageError, match="must return bytes"):
        await StorageCalls(Texty(), "texty").get("abc")


# -- the hook contract, checked when the Store is built (S5) --------------------------------


@pytest.mark.parametrize(
    "signature",
    [
        "(self, key: str, value: bytes) -> None",  # leaves out expires_in
        "(self, key: str, value: bytes, expires_in: float | None = None) -> None",
        "(self, key: str, value: bytes, *args: object) -> None",
        "(self, key: str, value: bytes, **kwargs: object) -> None",
        "(self, key: str, data: bytes, expires_in: float | None) -> None",
    ],
)
def test_a_hook_without_exactly_the_parameters_of_its_spec_is_refused_showing_the_right_one(
    signature: str,
) -> None:
    namespace: dict[str, Any] = {"Complete": Complete, "hookimpl": hookimpl}
    exec(
        "class Short(Complete):\n"
        "    @hookimpl\n"
        f"    async def storage_set{signature}:\n"
        "        pass\n",
        namespace,
    )
    with pytest.raises(pluggy.PluginValidationError) as caught:
        Store(Config(storage=namespace["Short"]()))
    assert str(caught.value).startswith("storage plugin 'Short': hook storage_set(")
    assert str(caught.value).endswith(
        "write it as `async def storage_set(self, key: str, value: bytes, "
        "expires_in: float | None) -> None`"
    )


def test_a_misspelt_hook_gets_the_nearest_name() -> None:
    class Misspelt(Complete):
        @hookimpl
        async def storage_delet(self, key: str) -> None:
            pass

    with pytest.raises(pluggy.PluginValidationError, match="did you mean 'storage_delete'"):
        Store(Config(storage=Misspelt()))


def test_a_defined_but_unmarked_hook_is_named_as_unmarked() -> None:
    class Unmarked(Complete):
        async def storage_reset(self) -> None:  # no @hookimpl: it does not count
            pass

    with pytest.raises(pluggy.PluginValidationError) as caught:
        Store(Config(storage=Unmarked()))
    assert "does not implement storage_reset (storage_reset defined but not marked" in str(
        caught.value
    )


class WithCas(Complete):
    def __init__(self, answer: object = True) -> None:
        super().__init__()
        self.answer = answer

    @hookimpl
    async def storage_compare_and_set(
        self, key: str, expected: bytes | None, value: bytes, expires_in: float | None
    ) -> bool:
        return self.answer  # type: ignore[return-value]


def test_compare_and_set_is_detected_when_the_store_is_built() -> None:
    assert StorageCalls(WithCas(), "cas").has_compare_and_set
    assert not StorageCalls(Complete(), "plain").has_compare_and_set


@pytest.mark.parametrize("answer", [1, None, "True", 0])
async def test_a_compare_and_set_that_returns_anything_but_a_bool_is_a_storage_error(
    answer: object,
) -> None:
    calls = StorageCalls(WithCas(answer), "cas")
    with pytest.raises(StorageError, match="it must return True or False"):
        await calls.compare_and_set("k", None, b"v", 60)


@pytest.mark.parametrize("value", [bytearray(b"x"), memoryview(b"x"), "x"])
async def test_a_get_that_returns_anything_but_bytes_or_none_is_a_storage_error(
    value: object,
) -> None:
    class Loose(Complete):
        @hookimpl
        async def storage_get(self, key: str) -> bytes | None:
            return value  # type: ignore[return-value]

    with pytest.raises(StorageError, match=r"must return bytes or None \(exactly\)"):
        await StorageCalls(Loose(), "loose").get("k")


async def test_a_plugin_object_failing_at_run_time_is_named_by_its_class() -> None:
    store = Store(Config(storage=Failing()))
    with pytest.raises(StorageError, match=r"^Failing storage failed to get a session") as caught:
        await store.get_by_id("some-id")
    assert caught.value.backend == "Failing"


def test_a_plugin_module_is_named_by_the_module(tmp_path: Path) -> None:
    source = (
        "import pluggy\n"
        "hookimpl = pluggy.HookimplMarker('sessionware')\n"
        "@hookimpl\nasync def storage_get(key: str) -> bytes | None:\n    return None\n"
        "@hookimpl\nasync def storage_set(key: str, value: bytes, expires_in: float | None)"
        " -> None:\n    pass\n"
        "@hookimpl\nasync def storage_delete(key: str) -> None:\n    pass\n"
        "@hookimpl\nasync def storage_reset() -> None:\n    pass\n"
        "@hookimpl\nasync def storage_close() -> None:\n    pass\n"
    )
    module = types.ModuleType("module_storage")
    exec(source, module.__dict__)
    assert Store(Config(storage=module)).backend == "module_storage"


def test_the_typing_protocols_describe_a_storage() -> None:
    assert isinstance(Complete(), Storage)
    assert not isinstance(Complete(), CompareAndSetStorage)
    assert isinstance(WithCas(), CompareAndSetStorage)
