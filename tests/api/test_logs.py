"""Logs are JSON lines with the request id, and never hold a secret or a full phone number."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from hub.logs import JsonFormatter, RequestIdFilter, TextFormatter, logging_config, redact
from tests.helpers import Api, World, make_world


@pytest.fixture(scope="module")
async def world(api: Api) -> World:
    return await make_world(api)


@pytest.mark.parametrize(
    ("raw", "logged"),
    [
        ("key fh_3f2a9c1b7d4e_Zk9-abc_DEF123 used", "key fh_3f2a9c1b7d4e_*** used"),
        ("token fhm_eyJtIjoxfQ.awO6xY-1.abc ok", "token fhm_*** ok"),
        ("Authorization: Bearer s3cr3t.value", "Authorization: Bearer ***"),
        ("phone 13800138000", "phone 138****8000"),
        ("phone 8613800138000 and +8613912345678", "phone 86138****8000 and +86139****5678"),
        ("intl +4915112345678", "intl +49****5678"),
        ('{"otp": "123456", "code": "OK"}', '{"otp": "***", "code": "OK"}'),
        ("otp=654321 password=hunter2", "otp=*** password=***"),
        ("order 2026-11-23 12:00 id 1234567890123456 ok", "order 2026-11-23 12:00 id 1234567890123456 ok"),
        ("request a13800138000b", "request a13800138000b"),
    ],
)
def test_redaction(raw: str, logged: str) -> None:
    assert redact(raw) == logged


@pytest.fixture
def json_lines() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RequestIdFilter())
    logger = logging.getLogger("hub")
    logger.addHandler(handler)
    try:
        yield stream
    finally:
        logger.removeHandler(handler)


async def test_an_error_is_logged_as_json_with_its_request_id_and_without_secrets(
    api: Api, world: World, json_lines: io.StringIO, monkeypatch: pytest.MonkeyPatch
) -> None:
    import hub.resolvers.members as members

    async def broken(principal: object, phone: str) -> None:
        raise RuntimeError(f"lookup of {phone} with {world.a.store} failed")

    monkeypatch.setattr(members, "membership_by_phone", broken)
    await api.client.post(
        "/graphql",
        json={"query": '{ memberByPhone(phone: "13912345678") { id } }'},
        headers={"authorization": f"Bearer {world.a.store}", "x-request-id": "till-9-0001"},
    )
    lines = [json.loads(line) for line in json_lines.getvalue().splitlines()]
    errors = [line for line in lines if line["level"] == "ERROR"]
    assert errors, lines
    line = errors[0]
    assert line["request_id"] == "till-9-0001"
    assert line["logger"] == "hub.errors" and line["time"].endswith("+00:00")
    assert "RuntimeError: lookup of 139****5678 with fh_" in line["exc_info"]
    text = json_lines.getvalue()
    assert "13912345678" not in text and world.a.store not in text
    assert world.a.store.split("_")[1] in text  # the key's public prefix stays, to identify it


def test_text_format_for_a_terminal() -> None:
    record = logging.LogRecord("hub.x", logging.INFO, __file__, 1, "member %s joined", ("13800138000",), None)
    RequestIdFilter().filter(record)
    assert TextFormatter().format(record).endswith("INFO hub.x [-] member 138****8000 joined")


def test_the_logging_config_covers_uvicorn_and_silences_query_logs() -> None:
    config = logging_config("json", "INFO")
    assert config["formatters"]["hub"]["()"] == "hub.logs.JsonFormatter"
    assert logging_config("text")["formatters"]["hub"]["()"] == "hub.logs.TextFormatter"
    assert {"uvicorn", "uvicorn.error", "uvicorn.access"} <= set(config["loggers"])
    assert config["loggers"]["tortoise.db_client"]["level"] == "WARNING"  # queries carry phone numbers
