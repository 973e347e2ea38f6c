"""`Config`: the defaults of S3's table, and every mistake caught when it is built."""

from __future__ import annotations

import dataclasses
import warnings
from datetime import timedelta
from typing import Any

import pytest
from sessionware import Config, SessionMiddleware, Source, Store
from sessionware._config import parse_key_lookup


def test_defaults_are_the_table_of_s3() -> None:
    config = Config()
    assert config.expiration == timedelta(hours=24)
    assert config.absolute_timeout is None
    assert config.storage == "memory"
    assert dict(config.storage_options) == {}
    assert config.key_lookup == "cookie:session_id"
    assert config.lookups == ((Source.COOKIE, "session_id"),)
    assert config.cookie_domain == ""
    assert config.cookie_path == ""
    assert config.cookie_secure is False
    assert config.cookie_http_only is True
    assert config.cookie_same_site == "Lax"
    assert config.cookie_session_only is False
    assert config.cookie_partitioned is False
    assert config.cookie_name is None
    assert config.secure is False
    generated = config.key_generator()
    assert isinstance(generated, str)
    assert len(generated) == 36
    assert generated != config.key_generator()


def test_config_is_a_keyword_only_dataclass() -> None:
    assert dataclasses.is_dataclass(Config)
    with pytest.raises(TypeError):
        Config(60)  # type: ignore[misc]


def test_default_storage_options_are_not_shared() -> None:
    assert Config().storage_options is not Config().storage_options


# -- lifetimes --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (timedelta(minutes=5), timedelta(minutes=5)),
        (300, timedelta(minutes=5)),
        (1.5, timedelta(seconds=1.5)),
        (0, timedelta(hours=24)),
        (timedelta(0), timedelta(hours=24)),
    ],
)
def test_expiration_takes_timedelta_or_seconds_and_zero_means_default(
    given: Any, expected: timedelta
) -> None:
    assert Config(expiration=given).expiration == expected


@pytest.mark.parametrize(
    ("field", "value", "error"),
    [
        ("expiration", -1, ValueError),
        ("expiration", timedelta(seconds=-1), ValueError),
        ("expiration", float("inf"), ValueError),
        ("expiration", float("nan"), ValueError),
        ("expiration", 1e300, ValueError),
        ("expiration", "1h", TypeError),
        ("expiration", True, TypeError),
        ("expiration", None, TypeError),
        ("absolute_timeout", 10, ValueError),  # below the 24 h expiration
        ("absolute_timeout", -5, ValueError),
        ("absolute_timeout", float("inf"), ValueError),
        ("absolute_timeout", "forever", TypeError),
        ("absolute_timeout", False, TypeError),
    ],
)
def test_bad_lifetimes_name_the_field(field: str, value: Any, error: type[Exception]) -> None:
    with pytest.raises(error, match=field):
        Config(**{field: value})


def test_absolute_timeout_may_equal_expiration_and_takes_seconds() -> None:
    config = Config(expiration=60, absolute_timeout=60)
    assert config.absolute_timeout == timedelta(seconds=60)
    assert Config(expiration=60, absolute_timeout=3600.5).absolute_timeout == timedelta(
        seconds=3600.5
    )


# -- key_lookup -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key_lookup", "expected"),
    [
        ("cookie:sid", ((Source.COOKIE, "sid"),)),
        ("header:X-Session-ID", ((Source.HEADER, "x-session-id"),)),
        ("query:sid", ((Source.URL_QUERY, "sid"),)),
        ("COOKIE:Sid", ((Source.COOKIE, "Sid"),)),  # cookie names keep their case
        (
            "  cookie : sid ,header:X-Id,   query:s  ",
            ((Source.COOKIE, "sid"), (Source.HEADER, "x-id"), (Source.URL_QUERY, "s")),
        ),
        ("cookie:sid, cookie:other, query:sid", (
            (Source.COOKIE, "sid"), (Source.COOKIE, "other"), (Source.URL_QUERY, "sid"),
        )),
    ],
)  # fmt: skip
def test_key_lookup_is_parsed_in_order(key_lookup: str, expected: tuple[Any, ...]) -> None:
    assert Config(key_lookup=key_lookup).lookups == expected
    assert parse_key_lookup(key_lookup) == expected


@pytest.mark.parametrize(
    "key_lookup",
    [
        "",
        "cookie",
        "cookie:",
        ":sid",
        "body:sid",
        "form:sid",
        "cookie:two words",
        "cookie:a;b",
        "cookie:a=b",
        "cookie:sid,",
        ",cookie:sid",
        "cookie:sid,,header:x",
        "cookie:séance",
        "cookie:sid, cookie:sid",  # R11: one cookie written twice
        "header:X-Id, header:x-id",  # header names ignore case
    ],
)
def test_bad_key_lookup_is_a_value_error_naming_the_field(key_lookup: str) -> None:
    with pytest.raises(ValueError, match="key_lookup"):
        Config(key_lookup=key_lookup)


def test_key_lookup_must_be_a_str() -> None:
    with pytest.raises(TypeError, match="key_lookup"):
        Config(key_lookup=["cookie:sid"])  # type: ignore[arg-type]


def test_the_same_name_in_different_sources_is_fine() -> None:
    lookups = Config(key_lookup="cookie:sid, header:sid, query:sid").lookups
    assert [source for source, _ in lookups] == [Source.COOKIE, Source.HEADER, Source.URL_QUERY]


# -- cookie attributes ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "expected"),
    [("lax", "Lax"), ("LAX", "Lax"), ("Strict", "Strict"), ("sTrIcT", "Strict"), ("none", "None")],
)
def test_same_site_takes_any_case(given: str, expected: str) -> None:
    assert Config(cookie_same_site=given).cookie_same_site == expected


@pytest.mark.parametrize("value", ["", "Lax ", "relaxed", "0", "None;"])
def test_bad_same_site_is_a_value_error(value: str) -> None:
    with pytest.raises(ValueError, match="cookie_same_site"):
        Config(cookie_same_site=value)


@pytest.mark.parametrize(
    ("config", "secure"),
    [
        ({}, False),
        ({"cookie_secure": True}, True),
        ({"cookie_same_site": "None"}, True),
        ({"cookie_partitioned": True}, True),
        ({"cookie_same_site": "Strict"}, False),
    ],
)
def test_same_site_none_and_partitioned_force_secure(config: dict[str, Any], secure: bool) -> None:
    assert Config(**config).secure is secure


@pytest.mark.parametrize(
    "field", ["cookie_secure", "cookie_http_only", "cookie_session_only", "cookie_partitioned"]
)
@pytest.mark.parametrize("value", [1, "true", None])
def test_flags_must_be_bool(field: str, value: Any) -> None:
    with pytest.raises(TypeError, match=field):
        Config(**{field: value})


@pytest.mark.parametrize("field", ["cookie_domain", "cookie_path", "cookie_same_site"])
def test_text_attributes_must_be_str(field: str) -> None:
    with pytest.raises(TypeError, match=field):
        Config(**{field: b"example.com"})


@pytest.mark.parametrize("field", ["cookie_domain", "cookie_path"])
@pytest.mark.parametrize(
    "value", ["a;b", "a,b", "a\r\nSet-Cookie: x=y", "a\x00", "a\tb", "exämple.com", "例え.jp"]
)
def test_domain_and_path_must_fit_in_a_cookie_attribute(field: str, value: str) -> None:
    """Anything else would end the attribute early, or could not be sent as header bytes."""
    with pytest.raises(ValueError, match=field):
        Config(**{field: value})


def test_usual_domain_and_path_are_accepted() -> None:
    config = Config(cookie_domain=".example.com", cookie_path="/app/v1")
    assert (config.cookie_domain, config.cookie_path) == (".example.com", "/app/v1")


# -- the rest ---------------------------------------------------------------------------


def test_storage_options_must_be_a_mapping() -> None:
    with pytest.raises(TypeError, match="storage_options"):
        Config(storage_options=[("gc_interval", 1)])  # type: ignore[arg-type]


def test_storage_options_with_a_plugin_object_is_a_value_error() -> None:
    from tests.support.apps import CountingStorage

    with pytest.raises(ValueError, match="storage_options"):
        Store(Config(storage=CountingStorage(), storage_options={"x": 1}))


@pytest.mark.parametrize("value", [None, "uuid4", 42])
def test_key_generator_must_be_callable(value: Any) -> None:
    with pytest.raises(TypeError, match="key_generator"):
        Config(key_generator=value)


def test_cookie_name_is_deprecated_and_sets_key_lookup() -> None:
    with pytest.warns(DeprecationWarning, match="cookie_name") as caught:
        config = Config(cookie_name="legacy_sid")
    assert config.key_lookup == "cookie:legacy_sid"
    assert config.lookups == ((Source.COOKIE, "legacy_sid"),)
    assert caught[0].filename == __file__  # points at the caller's line


@pytest.mark.parametrize(("value", "error"), [("two words", ValueError), ("", ValueError),
                                              ("a;b", ValueError), (7, TypeError)])  # fmt: skip
def test_bad_cookie_name_names_cookie_name(value: Any, error: type[Exception]) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        with pytest.raises(error, match="cookie_name"):
            Config(cookie_name=value)


def test_store_takes_only_a_config() -> None:
    with pytest.raises(TypeError, match="Config"):
        Store({"expiration": 60})  # type: ignore[arg-type]


def test_middleware_takes_only_a_store() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        pass

    with pytest.raises(TypeError, match="Store"):
        SessionMiddleware(app, store=Config())  # type: ignore[arg-type]


def test_default_ids_are_random_version_4_uuids() -> None:
    import uuid

    generate = Config().key_generator
    ids = {generate() for _ in range(500)}
    assert len(ids) == 500
    for text in ids:
        parsed = uuid.UUID(text)
        assert parsed.version == 4
        assert parsed.variant == uuid.RFC_4122
        assert str(parsed) == text
