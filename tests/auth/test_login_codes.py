"""One-time login codes: a member proves the phone and gets a token that reaches all its brands."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from starlette.applications import Starlette

from hub.auth.senders import LogSender, WebhookSender, sign
from hub.models import LoginCode
from tests.helpers import Api, CapturingSender, World, make_world, new_phone

REQUEST = "requestLoginCode"
VERIFY = "verifyLoginCode"


@pytest.fixture(scope="module")
async def world(api: Api) -> World:
    return await make_world(api)


async def _request(api: Api, phone: str) -> dict:
    return await api.mutate(REQUEST, {"phone": phone}, "", "expiresAt")


async def _verify(api: Api, phone: str, code: str) -> dict:
    return await api.mutate(VERIFY, {"phone": phone, "code": code}, "", "token expiresAt")


def _wrong(code: str) -> str:
    return f"{(int(code) + 1) % 10**6:06d}"


async def test_a_member_logs_in_with_a_code_and_reaches_all_its_brands(
    api: Api, world: World, sent_codes: CapturingSender
) -> None:
    at_a, phone, _ = await world.enroll()
    at_b = (await api.mutate("enrollMember", {"phone": phone}, world.b.store, "membership { id }"))[
        "membership"
    ]["id"]
    sent = await _request(api, phone)
    assert sent["userErrors"] == [] and sent["expiresAt"]
    verified = await _verify(api, phone, await sent_codes.code_for(phone))
    assert verified["userErrors"] == [], verified
    token = verified["token"]
    listed = await api.data("{ memberships { edges { node { id } } } }", token=token)
    assert sorted(e["node"]["id"] for e in listed["memberships"]["edges"]) == sorted([at_a, at_b])
    viewer = await api.data("{ viewer { role brandId allBrands expiresAt } }", token=token)
    assert viewer["viewer"]["role"] == "MEMBER" and viewer["viewer"]["allBrands"] is True
    assert viewer["viewer"]["brandId"] is None and viewer["viewer"]["expiresAt"] == verified["expiresAt"]


async def test_a_code_works_once_and_only_the_newest_code_works(
    api: Api, world: World, sent_codes: CapturingSender
) -> None:
    _, phone, _ = await world.enroll()
    await _request(api, phone)
    first = await sent_codes.code_for(phone)
    await _request(api, phone)
    second = await sent_codes.code_for(phone, count=2)
    if first != second:  # one in a million they are equal
        assert (await _verify(api, phone, first))["userErrors"][0]["code"] == "INVALID_CODE"
    assert (await _verify(api, phone, second))["userErrors"] == []
    assert (await _verify(api, phone, second))["userErrors"] == [{"code": "INVALID_CODE", "field": "code"}]


async def test_five_wrong_guesses_spend_a_code(api: Api, world: World, sent_codes: CapturingSender) -> None:
    _, phone, _ = await world.enroll()
    await _request(api, phone)
    code = await sent_codes.code_for(phone)
    # Guessed in parallel: the limit is counted atomically, so no more than five are ever compared.
    guesses = await asyncio.gather(*(_verify(api, phone, _wrong(code)) for _ in range(12)))
    assert all(g["userErrors"][0]["code"] == "INVALID_CODE" for g in guesses)
    assert (await LoginCode.filter(phone="86" + phone).order_by("-id").first()).attempts == 5  # type: ignore[union-attr]
    assert (await _verify(api, phone, code))["userErrors"][0]["code"] == "INVALID_CODE"


async def test_an_expired_code_is_refused(api: Api, world: World, sent_codes: CapturingSender) -> None:
    _, phone, _ = await world.enroll()
    await _request(api, phone)
    code = await sent_codes.code_for(phone)
    await LoginCode.filter(phone="86" + phone).update(expires_at=datetime.now(UTC) - timedelta(seconds=1))
    assert (await _verify(api, phone, code))["userErrors"][0]["code"] == "INVALID_CODE"


async def test_the_right_code_sent_many_times_at_once_gives_one_token(
    api: Api, world: World, sent_codes: CapturingSender
) -> None:
    _, phone, _ = await world.enroll()
    await _request(api, phone)
    code = await sent_codes.code_for(phone)
    answers = await asyncio.gather(*(_verify(api, phone, code) for _ in range(8)))
    assert sum(1 for a in answers if a["token"]) == 1


async def test_a_phone_gets_at_most_five_codes_an_hour_even_when_asked_at_once(
    api: Api, app: Starlette, world: World, sent_codes: CapturingSender
) -> None:
    _, phone, _ = await world.enroll()
    answers = await asyncio.gather(*(_request(api, phone) for _ in range(15)))
    codes = [a["userErrors"][0]["code"] if a["userErrors"] else "OK" for a in answers]
    assert codes.count("OK") == 5 and codes.count("RATE_LIMITED") == 10
    await app.state.services.login_codes.drain()
    assert len(sent_codes.codes_for(phone)) == 5


async def test_the_answer_does_not_tell_whether_a_phone_is_a_member(
    api: Api, app: Starlette, world: World, sent_codes: CapturingSender
) -> None:
    _, member, _ = await world.enroll()
    stranger = new_phone()
    answers = [await _request(api, member), await _request(api, stranger)]
    assert [sorted(a) for a in answers] == [["expiresAt", "userErrors"]] * 2
    assert [a["userErrors"] for a in answers] == [[], []]
    await app.state.services.login_codes.drain()
    assert len(sent_codes.codes_for(member)) == 1
    assert sent_codes.codes_for(stranger) == []  # nothing is sent to a stranger (no SMS spend, no leak)
    # A code row exists for both (the same work either way), and no code works for the stranger.
    assert await LoginCode.filter(phone="86" + stranger).count() == 1
    assert (await _verify(api, stranger, "123456"))["userErrors"] == [
        {"code": "INVALID_CODE", "field": "code"}
    ]
    assert (await _request(api, "12"))["userErrors"] == [{"code": "INVALID_PHONE", "field": "phone"}]


async def test_codes_are_kept_as_a_keyed_hash(api: Api, world: World, sent_codes: CapturingSender) -> None:
    _, phone, _ = await world.enroll()
    await _request(api, phone)
    code = await sent_codes.code_for(phone)
    row = await LoginCode.filter(phone="86" + phone).order_by("-id").first()
    assert row is not None and code not in row.code_hash
    for plain in (code, f"86{phone}:{code}", f"login:86{phone}:{code}"):
        assert row.code_hash != hashlib.sha256(plain.encode()).hexdigest()


async def test_the_webhook_sender_posts_a_signed_body() -> None:
    seen: list[httpx.Request] = []

    def gateway(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(204)

    client = httpx.AsyncClient(transport=httpx.MockTransport(gateway))
    sender = WebhookSender("https://sms.example/hooks/login", "s3cret", client)
    expires = datetime(2030, 1, 1, tzinfo=UTC)
    await sender.send("8613800138000", "042917", expires)
    await sender.aclose()
    (request,) = seen
    body = request.content
    assert json.loads(body) == {
        "phone": "+8613800138000",
        "code": "042917",
        "expiresAt": "2030-01-01T00:00:00+00:00",
        "purpose": "login",
    }
    timestamp = request.headers["x-hub-timestamp"]
    expected = hmac.new(b"s3cret", timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    assert request.headers["x-hub-signature"] == f"sha256={expected}" == sign("s3cret", timestamp, body)
    with pytest.raises(ValueError):
        WebhookSender("https://sms.example", "")


async def test_a_failing_gateway_is_logged_not_shown_to_the_caller(caplog: pytest.LogCaptureFixture) -> None:
    from hub.auth.codes import LoginCodes
    from hub.auth.tokens import MemberTokens

    client = httpx.AsyncClient(transport=httpx.MockTransport(lambda r: httpx.Response(503)))
    codes = LoginCodes("k", WebhookSender("https://sms.example", "s", client), MemberTokens("k", 60))
    with caplog.at_level(logging.ERROR, logger="hub.login"):
        await codes._deliver("8613800138000", "123456", datetime.now(UTC))
    assert "could not send a login code to +86138****8000" in caplog.text
    assert "123456" not in caplog.text and "8613800138000" not in caplog.text
    await codes.aclose()


async def test_the_log_sender_masks_the_phone(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="hub.login"):
        await LogSender().send("8613800138000", "123456", datetime.now(UTC))
    assert "+86138****8000: 123456" in caplog.text and "8613800138000" not in caplog.text
