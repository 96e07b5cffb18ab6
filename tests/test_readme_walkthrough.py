"""The README's walk-through, run in order against a real `hub serve --demo` (as after `make run`).

Each GraphQL block whose operation is listed in ROLES is sent with the key of that role, in README order,
with the values a newcomer copies from earlier answers (the checkout's transaction, the pass, the
redemption code, the login code) put in place of the README's examples. Every answer must be free of
errors and userErrors, except the refusals the README itself describes. Blocks not listed are checked by
tests/test_readme.py (schema validation) only.
"""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.processes import live_hubs
from tests.test_readme import _graphql_blocks

pytestmark = pytest.mark.server

ROOT = Path(__file__).resolve().parent.parent

# Operation (the first match in a block) -> the role whose key `make run` printed.
ROLES = [
    ("memberByPhone", "store FreshMart Xuhui"),
    ("recordPurchase(input: $input)", "store FreshMart Xuhui"),
    ("redeemPoints", "store FreshMart Xuhui"),
    ("adjustPoints", "FreshMart Supermarkets HQ"),
    ("ledgerAudit", "FreshMart Supermarkets HQ"),
    ("viewer { role phone }", "member 13800130000"),
    ('createApiKey(input: {role: STORE, storeId: "U3RvcmU6Mg=="', "FreshMart Supermarkets HQ"),
    ("apiKeys(first", "FreshMart Supermarkets HQ"),
    ("rotateApiKey", "FreshMart Supermarkets HQ"),
    ("revokeApiKey", "FreshMart Supermarkets HQ"),
    ("issueMemberToken", "FreshMart Supermarkets HQ"),
    ("requestLoginCode", None),
    ("verifyLoginCode", None),
    ("cancelJob", "FreshMart Supermarkets HQ"),
    ("jobs(first", "FreshMart Supermarkets HQ"),
    ("setCheckInProgram", "FreshMart Supermarkets HQ"),
    ("checkInStatus", "member 13800130000"),
    ("checkIn(", "member 13800130000"),
    ("createEngagementEvent", "FreshMart Supermarkets HQ"),
    ("reportEngagementEvent", "store FreshMart Xuhui"),
    ("segmentSize", "FreshMart Supermarkets HQ"),
    ("startBulkGrant", "FreshMart Supermarkets HQ"),
    ("couponTemplates", "FreshMart Supermarkets HQ"),
    ("createCouponTemplate", "FreshMart Supermarkets HQ"),
    ("buyCoupon", "member 13800130006"),
    ("coupons(status: AVAILABLE", "member 13800130000"),
    ("updateSpendingRules", "FreshMart Supermarkets HQ"),
    ("topUpStoredValue", "store FreshMart Xuhui"),
    ("quoteCheckout", "store FreshMart Xuhui"),
    ("refundCheckout", "store FreshMart Xuhui"),
    ("checkout(input", "store FreshMart Xuhui"),
    ("createGiftItem", "FreshMart Supermarkets HQ"),
    ("orderGift", "member 13800130006"),
    ("giftOrders", "FreshMart Supermarkets HQ"),
    ("fulfillGiftOrder", "store FreshMart Xuhui"),
    ("cancelGiftOrder", "FreshMart Supermarkets HQ"),
    ("createPassProduct", "SparkleWash Car Care HQ"),
    ("buyServicePass", "store SparkleWash Jing'an"),
    ("useServicePass", "store SparkleWash Jing'an"),
    ("setExpiryPolicy", "FreshMart Supermarkets HQ"),
    ("changeLog", "FreshMart Supermarkets HQ"),
    ('createStore(input: {brandId: "QnJhbmQ6MQ=="', "FreshMart Supermarkets HQ"),
    ("memberDataExport", "member 13800130000"),
    ("eraseMemberData", "FreshMart Supermarkets HQ"),
    ("reverseTransaction", "FreshMart Supermarkets HQ"),
    ("membershipsWithExpiringPoints", "FreshMart Supermarkets HQ"),
    ("lapsedMembers", "FreshMart Supermarkets HQ"),
    ("expiringPoints(withinDays", "member 13800130000"),
    ("updateLifecycleSettings", "FreshMart Supermarkets HQ"),
    ("transferPoints", "member 13800130000"),
    ("startWinBack", "FreshMart Supermarkets HQ"),
    ("winBackResponse", "FreshMart Supermarkets HQ"),
    ("reports(brandId", "FreshMart Supermarkets HQ"),
    ("partnerships(first", "store SparkleWash Jing'an"),
    ("createRedemptionCode", "member 13800130006"),
    ("redeemPartnerOffer", "store SparkleWash Jing'an"),
    ('TWVtYmVyc2hpcDo3") { ... on Membership { points', "member 13800130006"),
]
# Refusals the README describes next to the block (an operation and the code it answers).
EXPECTED_REFUSALS = {("cancelJob", "JOB_FINISHED"), ("cancelGiftOrder", "ORDER_CLOSED")}


def _role(document: str) -> tuple[str, str | None] | None:
    return next(((op, role) for op, role in ROLES if op in document), None)


def _keys(log: str) -> dict[str, str]:
    found = re.findall(r"^  (.+?)\s{2,}(fhm?_\S+)$", log, re.MULTILINE)
    return dict(found)


async def _post(http: httpx.AsyncClient, document: str, variables: Any, key: str | None) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    answer = await http.post("/graphql", json={"query": document, "variables": variables}, headers=headers)
    return dict(answer.json())


def _user_errors(answer: dict[str, Any]) -> list[str]:
    payload = next(iter((answer.get("data") or {}).values()), None)
    if not isinstance(payload, dict):
        return []
    return [e["code"] for e in payload.get("userErrors") or []]


async def test_the_readme_walk_through_runs_in_order() -> None:
    # Text logs, as `make run` has them: the login code is read from the log like a newcomer does.
    async with live_hubs(1, extra_env={"HUB_LOG_FORMAT": "text"}, args=("--demo",)) as (hubs, _env):
        hub = hubs[0]
        keys = {}
        for _ in range(100):  # the keys are printed once the demo data is seeded
            keys = _keys(hub.log.read_text())
            if "member 13800130006" in keys:
                break
            await asyncio.sleep(0.1)
        assert "store FreshMart Xuhui" in keys, hub.log.read_text()
        seen: dict[str, dict[str, Any]] = {}
        ran = 0
        async with httpx.AsyncClient(base_url=hub.url, timeout=30) as http:
            for line, document, variables_text in _graphql_blocks():
                found = _role(document)
                if found is None or document.lstrip().startswith("subscription"):
                    continue
                operation, role = found
                if operation == "verifyLoginCode":
                    await _wait_for_login_code(hub.log)
                document = _fill_in(document, seen, hub.log.read_text())
                variables = json.loads(variables_text) if variables_text and "$" in document else None
                answer = await _post(http, document, variables, keys[role] if role else None)
                seen[operation] = answer
                ran += 1
                assert "errors" not in answer, f"README.md:{line} ({operation}): {answer}"
                refused = [c for c in _user_errors(answer) if (operation, c) not in EXPECTED_REFUSALS]
                assert refused == [], f"README.md:{line} ({operation}): {answer}"
                if operation == "recordPurchase(input: $input)":
                    # The figures the README quotes for a fresh demo database.
                    purchase = answer["data"]["recordPurchase"]
                    assert (purchase["points"], purchase["balance"]) == (129, 487)
                if operation == "startBulkGrant":
                    await _wait_for_job(http, keys["FreshMart Supermarkets HQ"], answer)
            audit = await _post(http, "{ ledgerAudit { ok violations { check } } }", None, keys["platform"])
        assert ran > 40
        assert audit["data"]["ledgerAudit"] == {"ok": True, "violations": []}


def _fill_in(document: str, seen: dict[str, dict[str, Any]], log: str) -> str:
    """What a newcomer copies from earlier answers into the README's placeholders."""
    if "<the checkout's transaction id>" in document:
        transaction = seen["checkout(input"]["data"]["checkout"]["transaction"]["id"]
        document = document.replace("<the checkout's transaction id>", transaction)
    if "<servicePass id from the sale>" in document:
        sold = seen["buyServicePass"]["data"]["buyServicePass"]["servicePass"]["id"]
        document = document.replace("<servicePass id from the sale>", sold)
    if "redeemPartnerOffer" in document:
        code = seen["createRedemptionCode"]["data"]["createRedemptionCode"]["code"]["code"]
        document = re.sub(r'code: "\d+"', f'code: "{code}"', document)
    if "verifyLoginCode" in document:
        code = re.findall(r"login code for \S+ (\d{6})", log)[-1]
        document = re.sub(r'code: "\d+"', f'code: "{code}"', document)
    return document


async def _wait_for_job(http: httpx.AsyncClient, key: str, answer: dict[str, Any]) -> None:
    """A newcomer reads on after the grant has run (the README's next steps count on its points)."""
    job_id = answer["data"]["startBulkGrant"]["bulkGrant"]["job"]["id"]
    for _ in range(300):
        status = await _post(http, "query($j: ID!) { job(id: $j) { status } }", {"j": job_id}, key)
        if status["data"]["job"]["status"] in ("DONE", "FAILED"):
            assert status["data"]["job"]["status"] == "DONE"
            return
        await asyncio.sleep(0.1)
    raise AssertionError("the bulk grant did not finish")


async def _wait_for_login_code(log: Path) -> None:
    """The code is sent (here: logged) after requestLoginCode answers."""
    for _ in range(100):
        if "login code for" in await asyncio.to_thread(log.read_text):
            return
        await asyncio.sleep(0.1)
    raise AssertionError("no login code in the log")
