"""The authorisation matrix, read from the declared policy (hub/policy.py).

Every action of the table has a scenario here: one operation aimed at brand A (its stores, keys, and
membership M of person X). Ten callers try each, and what each must get is derived from the table:
an anonymous caller is UNAUTHENTICATED (unless the action is public); a role the action does not list
is PERMISSION_DENIED; an allowed role gets the scenario's success when the thing is within its reach
(the action's scope) and otherwise the same answer as for a thing that does not exist. So a new action
without a scenario fails ``test_every_action_has_a_scenario``, and a resolver that enforces something
else than the table fails its row.
"""

from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from starlette.applications import Starlette
from strawberry.relay import GlobalID

from hub.domain import Role
from hub.policy import POLICY, Action, Scope
from hub.worker.store import enqueue
from tests.helpers import (
    BALANCE_SUBSCRIPTION,
    Api,
    CapturingSender,
    World,
    make_brand,
    make_world,
    new_phone,
    outcome,
    pk,
    subscribe_first,
)
from tests.worker.handlers import unique_kind

_n = itertools.count()
U, D = "UNAUTHENTICATED", "PERMISSION_DENIED"


@dataclass(frozen=True)
class Actor:
    name: str
    role: Role | None
    reaches_brand: bool  # brand A is within its reach
    reaches_membership: bool  # membership M is within its reach


ACTORS = [
    Actor("anonymous", None, False, False),
    Actor("platform", Role.PLATFORM, True, True),
    Actor("hq_a", Role.BRAND, True, True),
    Actor("store_a", Role.STORE, True, True),
    Actor("hq_b", Role.BRAND, False, False),
    Actor("store_b", Role.STORE, False, False),
    Actor("member", Role.MEMBER, True, True),  # X, token issued by brand A
    Actor("member_via_b", Role.MEMBER, False, False),  # X too, token issued by brand B
    Actor("member_all_brands", Role.MEMBER, True, True),  # X, token from a login code
    Actor("other_member", Role.MEMBER, True, False),  # Y, a member of brand A, token issued by A
]


@dataclass
class Ctx:
    api: Api
    app: Starlette
    schema: Any
    codes: CapturingSender
    world: World
    membership: str  # M: X's membership of brand A
    transaction: str  # a transaction on M
    store_key: str  # a store key of brand A
    only_a_phone: str  # Y's phone: a member of brand A only
    tokens: dict[str, str | None]


Run = Callable[[Ctx, str | None], Awaitable[str]]


@dataclass
class Scenario:
    run: Run
    ok: str = "OK"  # what a caller in reach gets
    hidden: str = "NOT_FOUND"  # what a caller out of reach gets: the answer for a missing thing
    anonymous: str = "OK"  # what an anonymous caller of a public action gets
    # Which reach decides, when the scope alone does not say (a CALLER-scoped look-up of A's member).
    reach: str | None = None


SCENARIOS: dict[str, Scenario] = {}


def scenario(action: Action, **options: Any) -> Callable[[Run], Run]:
    def register(run: Run) -> Run:
        SCENARIOS[action.name] = Scenario(run, **options)
        return run

    return register


def expected(action: Action, s: Scenario, actor: Actor) -> str:
    if actor.role is None:
        return s.anonymous if action.public else U
    if actor.role not in action.roles:
        return D
    reach = s.reach or {Scope.BRAND: "brand", Scope.MEMBERSHIP: "membership"}.get(action.scope, "any")
    if reach == "any" or (reach == "brand" and actor.reaches_brand):
        return s.ok
    if reach == "membership" and actor.reaches_membership:
        return s.ok
    return s.hidden


async def _mutation(c: Ctx, name: str, input: dict, token: str | None) -> str:
    input_type = name[0].upper() + name[1:] + "Input"
    body = await c.api.gql(
        f"mutation($i: {input_type}!) {{ {name}(input: $i) {{ userErrors {{ code }} }} }}",
        {"i": input},
        token,
    )
    if body.get("errors"):
        return outcome(body)
    errors = body["data"][name]["userErrors"]
    return errors[0]["code"] if errors else "OK"


async def _query(c: Ctx, query: str, variables: dict, token: str | None) -> str:
    return outcome(await c.api.gql(query, variables, token))


async def _found_in_pages(c: Ctx, field: str, wanted: str, token: str | None) -> str:
    """Page through a connection: OK when ``wanted`` is in it, ABSENT when not, or the error's code."""
    after = None
    while True:
        body = await c.api.gql(
            f"query($a: String) {{ {field}(first: 100, after: $a) {{ edges {{ node {{ id }} }}"
            " pageInfo { hasNextPage endCursor } } }",
            {"a": after},
            token,
        )
        if body.get("errors"):
            return outcome(body)
        page = body["data"][field]
        if any(e["node"]["id"] == wanted for e in page["edges"]):
            return "OK"
        if not page["pageInfo"]["hasNextPage"]:
            return "ABSENT"
        after = page["pageInfo"]["endCursor"]


NODE = "query($id: ID!) { node(id: $id) { id } }"
EVENT = "authz_survey"  # an engagement event of brand A that any member may report 1,000 times


@scenario(POLICY["brand.create"])
async def create_brand(c: Ctx, t: str | None) -> str:
    return await _mutation(c, "createBrand", {"name": "X"}, t)


@scenario(POLICY["brand.list"], hidden="ABSENT")
async def list_brands(c: Ctx, t: str | None) -> str:
    return await _found_in_pages(c, "brands", c.world.a.id, t)


@scenario(POLICY["brand.read"], hidden="NULL")
async def read_brand(c: Ctx, t: str | None) -> str:
    return await _query(c, NODE, {"id": c.world.a.id}, t)


@scenario(POLICY["brand.setEarnRate"])
async def set_earn_rate(c: Ctx, t: str | None) -> str:
    return await _mutation(
        c, "setEarnRate", {"brandId": c.world.a.id, "earnPoints": 1, "earnUnitFen": 100}, t
    )


@scenario(POLICY["brand.updateSettings"])
async def update_brand_settings(c: Ctx, t: str | None) -> str:
    return await _mutation(
        c, "updateBrandSettings", {"brandId": c.world.a.id, "timezone": "Asia/Shanghai"}, t
    )


@scenario(POLICY["store.create"])
async def create_store(c: Ctx, t: str | None) -> str:
    return await _mutation(
        c, "createStore", {"brandId": c.world.a.id, "name": "N", "code": f"c{next(_n)}"}, t
    )


@scenario(POLICY["store.read"], hidden="NULL")
async def read_store(c: Ctx, t: str | None) -> str:
    return await _query(c, NODE, {"id": c.world.a.store_id}, t)


@scenario(POLICY["member.enroll"])
async def enroll(c: Ctx, t: str | None) -> str:
    return await _mutation(c, "enrollMember", {"phone": new_phone()}, t)  # into the caller's own brand


# The look-up is in the caller's own brand: from brand B, a member of brand A only is not found (null).
@scenario(POLICY["member.findByPhone"], reach="brand", hidden="NULL")
async def find_by_phone(c: Ctx, t: str | None) -> str:
    query = "query($p: String!) { memberByPhone(phone: $p) { id } }"
    return await _query(c, query, {"p": c.only_a_phone}, t)


@scenario(POLICY["membership.list"], hidden="ABSENT")
async def list_memberships(c: Ctx, t: str | None) -> str:
    return await _found_in_pages(c, "memberships", c.membership, t)


@scenario(POLICY["membership.read"], hidden="NULL")
async def read_membership(c: Ctx, t: str | None) -> str:
    query = (
        "query($id: ID!) { node(id: $id) { ... on Membership { points { available }"
        " history(first: 1) { edges { node { delta } } } } } }"
    )
    return await _query(c, query, {"id": c.membership}, t)


@scenario(POLICY["membership.watch"])
async def watch_balance(c: Ctx, t: str | None) -> str:
    first = await subscribe_first(c.app, c.schema, BALANCE_SUBSCRIPTION, {"m": c.membership, "a": 0}, t)
    return outcome(first)


BRAND_ACTIVITY = "subscription($b: ID!) { brandActivity(brandId: $b) { membershipId delta } }"


@scenario(POLICY["brand.watchActivity"])
async def watch_brand_activity(c: Ctx, t: str | None) -> str:
    from tests.console.support import first_activity

    return outcome(await first_activity(c.app, c.schema, c.world, BRAND_ACTIVITY, c.membership, t))


@scenario(POLICY["transaction.read"], hidden="NULL")
async def read_transaction(c: Ctx, t: str | None) -> str:
    return await _query(c, NODE, {"id": c.transaction}, t)


@scenario(POLICY["points.earn"])
async def earn(c: Ctx, t: str | None) -> str:
    input = {"membershipId": c.membership, "amountFen": 100, "idempotencyKey": f"authz-{next(_n)}"}
    return await _mutation(c, "recordPurchase", input, t)


@scenario(POLICY["points.redeem"])
async def redeem(c: Ctx, t: str | None) -> str:
    input = {"membershipId": c.membership, "points": 1, "reason": "r", "idempotencyKey": f"authz-{next(_n)}"}
    return await _mutation(c, "redeemPoints", input, t)


@scenario(POLICY["points.adjust"])
async def adjust(c: Ctx, t: str | None) -> str:
    input = {"membershipId": c.membership, "points": 1, "reason": "r", "idempotencyKey": f"authz-{next(_n)}"}
    return await _mutation(c, "adjustPoints", input, t)


@scenario(POLICY["ledger.audit"])
async def audit(c: Ctx, t: str | None) -> str:
    return await _query(c, "query($b: ID) { ledgerAudit(brandId: $b) { ok } }", {"b": c.world.a.id}, t)


@scenario(POLICY["changeLog.read"])
async def read_change_log(c: Ctx, t: str | None) -> str:
    query = "query($b: ID) { changeLog(brandId: $b, first: 1) { edges { node { number } } } }"
    return await _query(c, query, {"b": c.world.a.id}, t)


async def _with_personal_data(c: Ctx, t: str | None) -> str | None:
    """The same caller with the PERSONAL_DATA scope (an API key of its role and brand that has it);
    tests/records covers keys without it."""
    if t is None or not t.startswith("fh_"):
        return t
    viewer = (await c.api.data("{ viewer { role brandId } }", token=t))["viewer"]
    if viewer["role"] not in ("PLATFORM", "BRAND"):
        return t
    input = {"role": viewer["role"], "brandId": viewer["brandId"], "scopes": ["PERSONAL_DATA"]}
    return str((await c.api.mutate("createApiKey", input, c.world.platform, "secret"))["secret"])


@scenario(POLICY["member.export"])
async def export_member_data(c: Ctx, t: str | None) -> str:
    query = "query($m: ID!) { memberDataExport(membershipId: $m) { exportedAt } }"
    return await _query(c, query, {"m": c.membership}, await _with_personal_data(c, t))


@scenario(POLICY["member.erase"])
async def erase_member_data(c: Ctx, t: str | None) -> str:
    from hub.models import Member, Membership

    before = await Membership.get(id=pk(c.membership))
    result = await _mutation(c, "eraseMemberData", {"membershipId": c.membership}, t)
    if result == "OK":  # put X back, so that the other scenarios find M as it was
        after = await Membership.get(id=before.id)
        await Membership.filter(id=before.id).update(member_id=before.member_id, erased_at=None)
        if after.member_id != before.member_id:
            await Member.filter(id=after.member_id).delete()
        else:
            raise AssertionError("X has memberships of two brands: the erasure moves M to a nobody")
    return result


@scenario(POLICY["transaction.reverse"])
async def reverse_transaction(c: Ctx, t: str | None) -> str:
    adjust = {
        "membershipId": c.membership,
        "points": 1,
        "reason": "authz",
        "idempotencyKey": f"authz-{next(_n)}",
    }
    made = await c.api.mutate("adjustPoints", adjust, c.world.a.hq, "transaction { id }")
    input = {
        "transactionId": made["transaction"]["id"],
        "reason": "authz",
        "idempotencyKey": f"authz-{next(_n)}",
    }
    return await _mutation(c, "reverseTransaction", input, t)


@scenario(POLICY["key.create"])
async def create_key(c: Ctx, t: str | None) -> str:
    return await _mutation(c, "createApiKey", {"role": "STORE", "storeId": c.world.a.store_id}, t)


@scenario(POLICY["key.list"], hidden="ABSENT")
async def list_keys(c: Ctx, t: str | None) -> str:
    return await _found_in_pages(c, "apiKeys", c.store_key, t)


@scenario(POLICY["key.read"], hidden="NULL")
async def read_key(c: Ctx, t: str | None) -> str:
    return await _query(c, NODE, {"id": c.store_key}, t)


async def _fresh_store_key(c: Ctx) -> str:
    created = await c.api.mutate(
        "createApiKey", {"role": "STORE", "storeId": c.world.a.store2_id}, c.world.a.hq, "apiKey { id }"
    )
    return str(created["apiKey"]["id"])


@scenario(POLICY["key.revoke"])
async def revoke_key(c: Ctx, t: str | None) -> str:
    return await _mutation(c, "revokeApiKey", {"id": await _fresh_store_key(c)}, t)


@scenario(POLICY["key.rotate"])
async def rotate_key(c: Ctx, t: str | None) -> str:
    return await _mutation(c, "rotateApiKey", {"id": await _fresh_store_key(c)}, t)


@scenario(POLICY["token.issue"])
async def issue_token(c: Ctx, t: str | None) -> str:
    return await _mutation(c, "issueMemberToken", {"membershipId": c.membership}, t)


async def _job_of_a(c: Ctx) -> str:
    job, _ = await enqueue(unique_kind("authz"), brand_id=pk(c.world.a.id))
    return str(GlobalID("Job", str(job.id)))


@scenario(POLICY["job.read"])
async def read_job(c: Ctx, t: str | None) -> str:
    return await _query(c, "query($id: ID!) { job(id: $id) { id } }", {"id": await _job_of_a(c)}, t)


@scenario(POLICY["job.list"])
async def list_jobs(c: Ctx, t: str | None) -> str:
    return await _query(
        c, "query($b: ID) { jobs(brandId: $b) { edges { node { id } } } }", {"b": c.world.a.id}, t
    )


@scenario(POLICY["job.cancel"])
async def cancel_job(c: Ctx, t: str | None) -> str:
    return await _mutation(c, "cancelJob", {"jobId": await _job_of_a(c)}, t)


JOB_PROGRESS = "subscription($j: ID!) { jobProgress(jobId: $j) { jobId status revision } }"


@scenario(POLICY["job.watch"])
async def watch_job(c: Ctx, t: str | None) -> str:
    first = await subscribe_first(c.app, c.schema, JOB_PROGRESS, {"j": await _job_of_a(c)}, t)
    return outcome(first)


@scenario(POLICY["checkin.perform"])
async def check_in(c: Ctx, t: str | None) -> str:
    return await _mutation(c, "checkIn", {"membershipId": c.membership}, t)


@scenario(POLICY["checkin.configure"])
async def configure_check_in(c: Ctx, t: str | None) -> str:
    input = {"brandId": c.world.a.id, "dailyPoints": 1, "streakBonuses": [{"day": 7, "points": 5}]}
    return await _mutation(c, "setCheckInProgram", input, t)


@scenario(POLICY["event.define"])
async def define_event(c: Ctx, t: str | None) -> str:
    input = {"brandId": c.world.a.id, "code": f"authz{next(_n)}", "name": "Survey", "points": 5}
    return await _mutation(c, "createEngagementEvent", input, t)


@scenario(POLICY["event.report"])
async def report_event(c: Ctx, t: str | None) -> str:
    input = {"membershipId": c.membership, "eventCode": EVENT, "idempotencyKey": f"authz-{next(_n)}"}
    return await _mutation(c, "reportEngagementEvent", input, t)


@scenario(POLICY["grant.start"])
async def start_bulk_grant(c: Ctx, t: str | None) -> str:
    input = {
        "brandId": c.world.a.id,
        "name": "Nobody",
        "reason": "authz",
        "points": 1,
        "segment": {"tiers": ["nobody"]},
        "idempotencyKey": f"authz-{next(_n)}",
    }
    return await _mutation(c, "startBulkGrant", input, t)


@scenario(POLICY["segment.count"])
async def count_segment(c: Ctx, t: str | None) -> str:
    query = "query($b: ID!) { segmentSize(brandId: $b, segment: {minPoints: 0}) }"
    return await _query(c, query, {"b": c.world.a.id}, t)


@scenario(POLICY["report.read"])
async def read_reports(c: Ctx, t: str | None) -> str:
    query = (
        "query($b: ID!) { reports(brandId: $b) { liability { points { available } }"
        " memberList(first: 1) { edges { node { phone } } } } }"
    )
    return await _query(c, query, {"b": c.world.a.id}, t)


async def _coupon_template_of_a(c: Ctx) -> str:
    created = await c.api.mutate(
        "createCouponTemplate",
        {
            "brandId": c.world.a.id,
            "code": f"authz-{next(_n)}",
            "name": "C",
            "kind": "AMOUNT_OFF",
            "amountOffFen": 100,
            "pointsPrice": 1,
        },
        c.world.a.hq,
        "template { id }",
    )
    return str(created["template"]["id"])


@scenario(POLICY["coupon.manageTemplates"])
async def manage_coupon_templates(c: Ctx, t: str | None) -> str:
    input = {
        "brandId": c.world.a.id,
        "code": f"authz-{next(_n)}",
        "name": "N",
        "kind": "AMOUNT_OFF",
        "amountOffFen": 1,
    }
    return await _mutation(c, "createCouponTemplate", input, t)


@scenario(POLICY["coupon.readTemplates"], hidden="ABSENT")
async def read_coupon_templates(c: Ctx, t: str | None) -> str:
    template = await _coupon_template_of_a(c)
    body = await c.api.gql(
        "query($b: ID) { couponTemplates(brandId: $b, first: 100) { edges { node { id } } } }",
        {"b": c.world.a.id},
        t,
    )
    if body.get("errors"):
        return outcome(body)
    found = [e["node"]["id"] for e in body["data"]["couponTemplates"]["edges"]]
    return "OK" if template in found else "ABSENT"


@scenario(POLICY["coupon.issue"])
async def issue_coupons(c: Ctx, t: str | None) -> str:
    input = {
        "templateId": await _coupon_template_of_a(c),
        "membershipId": c.membership,
        "reason": "r",
        "idempotencyKey": f"authz-{next(_n)}",
    }
    return await _mutation(c, "issueCoupons", input, t)


@scenario(POLICY["coupon.buy"])
async def buy_coupon(c: Ctx, t: str | None) -> str:
    input = {
        "templateId": await _coupon_template_of_a(c),
        "membershipId": c.membership,
        "idempotencyKey": f"authz-{next(_n)}",
    }
    return await _mutation(c, "buyCoupon", input, t)


@scenario(POLICY["coupon.read"], hidden="NULL")
async def read_coupon(c: Ctx, t: str | None) -> str:
    issued = await c.api.mutate(
        "issueCoupons",
        {
            "templateId": await _coupon_template_of_a(c),
            "membershipId": c.membership,
            "reason": "r",
            "idempotencyKey": f"authz-{next(_n)}",
        },
        c.world.a.hq,
        "coupons { id }",
    )
    return await _query(c, NODE, {"id": issued["coupons"][0]["id"]}, t)


async def _top_up_of_m(c: Ctx) -> str:
    out = await c.api.mutate(
        "topUpStoredValue",
        {
            "membershipId": c.membership,
            "amountFen": 1_000,
            "paymentReference": f"authz-{next(_n)}",
            "idempotencyKey": f"authz-{next(_n)}",
        },
        c.world.a.store,
        "transaction { id }",
    )
    return str(out["transaction"]["id"])


@scenario(POLICY["spending.setRules"])
async def set_spending_rules(c: Ctx, t: str | None) -> str:
    return await _mutation(c, "updateSpendingRules", {"brandId": c.world.a.id, "pointsStepFen": 100}, t)


@scenario(POLICY["storedValue.topUp"])
async def top_up_stored_value(c: Ctx, t: str | None) -> str:
    input = {
        "membershipId": c.membership,
        "amountFen": 100,
        "paymentReference": f"authz-{next(_n)}",
        "idempotencyKey": f"authz-{next(_n)}",
    }
    return await _mutation(c, "topUpStoredValue", input, t)


@scenario(POLICY["storedValue.refundTopUp"])
async def refund_top_up(c: Ctx, t: str | None) -> str:
    input = {"topUpId": await _top_up_of_m(c), "amountFen": 1, "idempotencyKey": f"authz-{next(_n)}"}
    return await _mutation(c, "refundTopUp", input, t)


@scenario(POLICY["storedValue.convertPoints"])
async def convert_points(c: Ctx, t: str | None) -> str:
    input = {"membershipId": c.membership, "points": 1, "idempotencyKey": f"authz-{next(_n)}"}
    return await _mutation(c, "convertPointsToStoredValue", input, t)


@scenario(POLICY["checkout.quote"])
async def quote_checkout(c: Ctx, t: str | None) -> str:
    query = "query($m: ID!) { quoteCheckout(membershipId: $m, billFen: 1000) { maxPointsFen } }"
    return await _query(c, query, {"m": c.membership}, t)


@scenario(POLICY["checkout.pay"])
async def pay_at_checkout(c: Ctx, t: str | None) -> str:
    input = {"membershipId": c.membership, "billFen": 100, "idempotencyKey": f"authz-{next(_n)}"}
    return await _mutation(c, "checkout", input, t)


@scenario(POLICY["checkout.refund"])
async def refund_checkout(c: Ctx, t: str | None) -> str:
    bought = await c.world.earn(c.membership, 100, f"authz-{next(_n)}")
    input = {
        "transactionId": bought["transaction"]["id"],
        "amountFen": 1,
        "idempotencyKey": f"authz-{next(_n)}",
    }
    return await _mutation(c, "refundCheckout", input, t)


@scenario(POLICY["storedValue.read"], hidden="NULL")
async def read_stored_value(c: Ctx, t: str | None) -> str:
    query = "query($id: ID!) { node(id: $id) { ... on Membership { storedValue { totalFen } } } }"
    body = await c.api.gql(query, {"id": c.membership}, t)
    if body.get("errors"):
        return outcome(body)
    return "OK" if body["data"]["node"] is not None else "NULL"


async def _gift_item_of_a(c: Ctx) -> str:
    input = {"brandId": c.world.a.id, "code": f"authz-{next(_n)}", "name": "G", "pointsPrice": 1}
    return str((await c.api.mutate("createGiftItem", input, c.world.a.hq, "item { id }"))["item"]["id"])


async def _gift_order_of_a(c: Ctx) -> str:
    """An order of M's, collected at store_a's store."""
    input = {
        "itemId": await _gift_item_of_a(c),
        "membershipId": c.membership,
        "idempotencyKey": f"authz-{next(_n)}",
    }
    return str((await c.api.mutate("orderGift", input, c.world.a.store, "order { id }"))["order"]["id"])


@scenario(POLICY["gift.manage"])
async def manage_gifts(c: Ctx, t: str | None) -> str:
    input = {"brandId": c.world.a.id, "code": f"authz-{next(_n)}", "name": "G", "pointsPrice": 1}
    return await _mutation(c, "createGiftItem", input, t)


@scenario(POLICY["gift.read"], hidden="ABSENT")
async def read_gifts(c: Ctx, t: str | None) -> str:
    gift = await _gift_item_of_a(c)
    body = await c.api.gql(
        "query($b: ID) { giftItems(brandId: $b, first: 100) { edges { node { id } } } }",
        {"b": c.world.a.id},
        t,
    )
    if body.get("errors"):
        return outcome(body)
    return "OK" if gift in [e["node"]["id"] for e in body["data"]["giftItems"]["edges"]] else "ABSENT"


@scenario(POLICY["gift.order"])
async def order_gift(c: Ctx, t: str | None) -> str:
    input = {
        "itemId": await _gift_item_of_a(c),
        "membershipId": c.membership,
        "storeId": c.world.a.store_id,
        "idempotencyKey": f"authz-{next(_n)}",
    }
    return await _mutation(c, "orderGift", input, t)


@scenario(POLICY["giftOrder.list"], hidden="ABSENT")
async def list_gift_orders(c: Ctx, t: str | None) -> str:
    placed = await _gift_order_of_a(c)
    body = await c.api.gql(
        "query($b: ID) { giftOrders(brandId: $b, first: 100) { edges { node { id } } } }",
        {"b": c.world.a.id},
        t,
    )
    if body.get("errors"):
        return outcome(body)
    return "OK" if placed in [e["node"]["id"] for e in body["data"]["giftOrders"]["edges"]] else "ABSENT"


@scenario(POLICY["giftOrder.read"], hidden="NULL")
async def read_gift_order(c: Ctx, t: str | None) -> str:
    return await _query(c, NODE, {"id": await _gift_order_of_a(c)}, t)


@scenario(POLICY["giftOrder.fulfil"])
async def fulfil_gift_order(c: Ctx, t: str | None) -> str:
    return await _mutation(c, "fulfillGiftOrder", {"orderId": await _gift_order_of_a(c)}, t)


@scenario(POLICY["giftOrder.cancel"])
async def cancel_gift_order(c: Ctx, t: str | None) -> str:
    return await _mutation(c, "cancelGiftOrder", {"orderId": await _gift_order_of_a(c)}, t)


async def _pass_product_of_a(c: Ctx) -> str:
    input = {
        "brandId": c.world.a.id,
        "code": f"authz-{next(_n)}",
        "name": "P",
        "uses": 2,
        "validDays": 1,
        "priceFen": 100,
        "pointsPrice": 1,
    }
    return str(
        (await c.api.mutate("createPassProduct", input, c.world.a.hq, "product { id }"))["product"]["id"]
    )


async def _pass_of_m(c: Ctx) -> str:
    input = {
        "productId": await _pass_product_of_a(c),
        "membershipId": c.membership,
        "payment": "CASH",
        "paymentReference": f"authz-{next(_n)}",
        "idempotencyKey": f"authz-{next(_n)}",
    }
    sold = await c.api.mutate("buyServicePass", input, c.world.a.store, "servicePass { id }")
    return str(sold["servicePass"]["id"])


@scenario(POLICY["pass.manageProducts"])
async def manage_pass_products(c: Ctx, t: str | None) -> str:
    input = {"brandId": c.world.a.id, "code": f"authz-{next(_n)}", "name": "P", "uses": 1, "validDays": 1}
    return await _mutation(c, "createPassProduct", input, t)


@scenario(POLICY["pass.readProducts"], hidden="ABSENT")
async def read_pass_products(c: Ctx, t: str | None) -> str:
    made = await _pass_product_of_a(c)
    body = await c.api.gql(
        "query($b: ID) { passProducts(brandId: $b, first: 100) { edges { node { id } } } }",
        {"b": c.world.a.id},
        t,
    )
    if body.get("errors"):
        return outcome(body)
    return "OK" if made in [e["node"]["id"] for e in body["data"]["passProducts"]["edges"]] else "ABSENT"


@scenario(POLICY["pass.buy"])
async def buy_service_pass(c: Ctx, t: str | None) -> str:
    input = {
        "productId": await _pass_product_of_a(c),
        "membershipId": c.membership,
        "payment": "POINTS",
        "idempotencyKey": f"authz-{next(_n)}",
    }
    return await _mutation(c, "buyServicePass", input, t)


@scenario(POLICY["pass.use"])
async def use_service_pass(c: Ctx, t: str | None) -> str:
    input = {"passId": await _pass_of_m(c), "idempotencyKey": f"authz-{next(_n)}"}
    return await _mutation(c, "useServicePass", input, t)


@scenario(POLICY["pass.read"], hidden="NULL")
async def read_service_pass(c: Ctx, t: str | None) -> str:
    return await _query(c, NODE, {"id": await _pass_of_m(c)}, t)


async def _lottery_of_a(c: Ctx) -> str:
    input = {
        "brandId": c.world.a.id,
        "code": f"authz-{next(_n)}",
        "name": "L",
        "costPoints": 1,
        "prizes": [{"name": "None", "kind": "NOTHING", "weight": 1}],
    }
    return str((await c.api.mutate("createLottery", input, c.world.a.hq, "lottery { id }"))["lottery"]["id"])


@scenario(POLICY["lottery.manage"])
async def manage_lotteries(c: Ctx, t: str | None) -> str:
    input = {
        "brandId": c.world.a.id,
        "code": f"authz-{next(_n)}",
        "name": "L",
        "costPoints": 1,
        "prizes": [{"name": "None", "kind": "NOTHING", "weight": 1}],
    }
    return await _mutation(c, "createLottery", input, t)


@scenario(POLICY["lottery.read"], hidden="ABSENT")
async def read_lotteries(c: Ctx, t: str | None) -> str:
    made = await _lottery_of_a(c)
    body = await c.api.gql(
        "query($b: ID) { lotteries(brandId: $b, first: 100) { edges { node { id } } } }",
        {"b": c.world.a.id},
        t,
    )
    if body.get("errors"):
        return outcome(body)
    return "OK" if made in [e["node"]["id"] for e in body["data"]["lotteries"]["edges"]] else "ABSENT"


@scenario(POLICY["lottery.play"])
async def play_lottery(c: Ctx, t: str | None) -> str:
    input = {
        "lotteryId": await _lottery_of_a(c),
        "membershipId": c.membership,
        "idempotencyKey": f"authz-{next(_n)}",
    }
    return await _mutation(c, "playLottery", input, t)


@scenario(POLICY["lottery.readPlays"], hidden="NULL")
async def read_lottery_play(c: Ctx, t: str | None) -> str:
    input = {
        "lotteryId": await _lottery_of_a(c),
        "membershipId": c.membership,
        "idempotencyKey": f"authz-{next(_n)}",
    }
    played = await c.api.mutate("playLottery", input, c.world.a.store, "play { id }")
    return await _query(c, NODE, {"id": played["play"]["id"]}, t)


@scenario(POLICY["login.requestCode"])
async def request_code(c: Ctx, t: str | None) -> str:
    return await _mutation(c, "requestLoginCode", {"phone": new_phone()}, t)


@scenario(POLICY["login.verifyCode"])
async def verify_code(c: Ctx, t: str | None) -> str:
    _, phone, _ = await c.world.enroll()
    assert await _mutation(c, "requestLoginCode", {"phone": phone}, None) == "OK"
    code = await c.codes.code_for(phone)
    return await _mutation(c, "verifyLoginCode", {"phone": phone, "code": code}, t)


@scenario(POLICY["viewer"], anonymous="NULL")
async def viewer(c: Ctx, t: str | None) -> str:
    return await _query(c, "{ viewer { role } }", {}, t)


@scenario(POLICY["node"], ok="NULL")
async def node_of_nothing(c: Ctx, t: str | None) -> str:
    return await _query(c, NODE, {"id": "QnJhbmQ6OTAwMDAwMDAwMA=="}, t)  # Brand:9000000000


# --- earning: rules, preview, tiers, referral, birthday ----------------------------------------------

LADDER = {
    "basis": "POINTS",
    "window": "CALENDAR_YEAR",
    "downgrade": "NONE",
    "tiers": [{"code": "silver", "name": "Silver", "threshold": 1}],
}


@scenario(POLICY["earnRule.manage"])
async def manage_earn_rule(c: Ctx, t: str | None) -> str:
    rule = {"name": "authz", "multiplierNumerator": 1, "multiplierDenominator": 1}
    return await _mutation(
        c, "createEarnRule", {"brandId": c.world.a.id, "kind": "MULTIPLIER", "rule": rule}, t
    )


@scenario(POLICY["earnRule.read"])
async def read_earn_rules(c: Ctx, t: str | None) -> str:
    query = "query($b: ID!) { earnRules(brandId: $b) { edges { node { id } } } }"
    return await _query(c, query, {"b": c.world.a.id}, t)


@scenario(POLICY["expiry.setPolicy"])
async def set_expiry_policy(c: Ctx, t: str | None) -> str:
    return await _mutation(c, "setExpiryPolicy", {"brandId": c.world.a.id, "kind": "DAYS", "count": 3660}, t)


@scenario(POLICY["expiry.redate"])
async def redate_open_points(c: Ctx, t: str | None) -> str:
    input = {"brandId": c.world.a.id, "reason": "policy changed", "idempotencyKey": f"authz-{next(_n)}"}
    return await _mutation(c, "redateOpenPoints", input, t)


@scenario(POLICY["expiry.readPolicy"])
async def read_expiry_policy(c: Ctx, t: str | None) -> str:
    await set_expiry_policy(c, c.world.a.hq)  # so that brand A has one to read
    query = "query($b: ID!) { expiryPolicy(brandId: $b) { version } }"
    return await _query(c, query, {"b": c.world.a.id}, t)


@scenario(POLICY["expiry.listExpiring"], hidden="NOT_FOUND")
async def list_expiring(c: Ctx, t: str | None) -> str:
    query = "query($b: ID!) { membershipsWithExpiringPoints(brandId: $b) { edges { node { points } } } }"
    return await _query(c, query, {"b": c.world.a.id}, t)


@scenario(POLICY["expiry.watch"])
async def watch_expiring(c: Ctx, t: str | None) -> str:
    from datetime import UTC, datetime, timedelta

    from hub.models import ExpiryNotice
    from tests.helpers import pk

    # A notice for M to catch up on (afterNoticeId: 0), so an allowed caller gets one at once.
    when = datetime(2030, 1, 1, tzinfo=UTC) + timedelta(days=1)
    await ExpiryNotice.get_or_create(
        membership_id=pk(c.membership),
        expires_at=when,
        lead_days=7,
        defaults={"brand_id": pk(c.world.a.id), "points": 1},
    )
    query = "subscription($m: ID!) { pointsExpiring(membershipId: $m, afterNoticeId: 0) { points leadDays } }"
    return outcome(await subscribe_first(c.app, c.schema, query, {"m": c.membership}, t))


@scenario(POLICY["lapsed.list"])
async def list_lapsed(c: Ctx, t: str | None) -> str:
    query = "query($b: ID!) { lapsedMembers(brandId: $b, days: 30) { edges { node { balance } } } }"
    return await _query(c, query, {"b": c.world.a.id}, t)


async def _win_back(c: Ctx, t: str | None) -> dict:
    input = {
        "brandId": c.world.a.id,
        "days": 3000,
        "points": 1,
        "reason": "We miss you",
        "idempotencyKey": f"authz-{next(_n)}",
    }
    body = await c.api.gql(
        "mutation($i: StartWinBackInput!) { startWinBack(input: $i) { userErrors { code } bulkGrant { job { id } } } }",
        {"i": input},
        t,
    )
    return body


@scenario(POLICY["lapsed.winBack"])
async def start_win_back(c: Ctx, t: str | None) -> str:
    body = await _win_back(c, t)
    if body.get("errors"):
        return outcome(body)
    errors = body["data"]["startWinBack"]["userErrors"]
    return errors[0]["code"] if errors else "OK"


@scenario(POLICY["lapsed.response"])
async def win_back_response(c: Ctx, t: str | None) -> str:
    job = (await _win_back(c, c.world.a.hq))["data"]["startWinBack"]["bulkGrant"]["job"]["id"]
    query = "query($j: ID!) { winBackResponse(jobId: $j) { recipients rateBasisPoints } }"
    return await _query(c, query, {"j": job}, t)


@scenario(POLICY["lifecycle.readSettings"])
async def read_lifecycle_settings(c: Ctx, t: str | None) -> str:
    query = "query($b: ID!) { lifecycleSettings(brandId: $b) { transfersEnabled } }"
    return await _query(c, query, {"b": c.world.a.id}, t)


@scenario(POLICY["lifecycle.updateSettings"])
async def update_lifecycle_settings(c: Ctx, t: str | None) -> str:
    input = {"brandId": c.world.a.id, "transfersEnabled": True, "transferMaxPerDay": None}
    return await _mutation(c, "updateLifecycleSettings", input, t)


@scenario(POLICY["points.transfer"])
async def transfer_points(c: Ctx, t: str | None) -> str:
    await update_lifecycle_settings(c, c.world.a.hq)
    await c.world.earn(c.membership, 100, f"authz-{next(_n)}")  # one point to give
    input = {
        "membershipId": c.membership,
        "toPhone": c.only_a_phone,
        "points": 1,
        "idempotencyKey": f"authz-{next(_n)}",
    }
    return await _mutation(c, "transferPoints", input, t)


@scenario(POLICY["points.merge"])
async def merge_points(c: Ctx, t: str | None) -> str:
    other = (await c.world.enroll())[0]  # a membership of brand A merged into M (M keeps its points)
    input = {
        "fromMembershipId": other,
        "toMembershipId": c.membership,
        "reason": "phone changed owner",
        "idempotencyKey": f"authz-{next(_n)}",
    }
    return await _mutation(c, "mergePoints", input, t)


@scenario(POLICY["earn.preview"])
async def preview_earn(c: Ctx, t: str | None) -> str:
    query = "query($m: ID!) { previewEarn(membershipId: $m, amountFen: 100) { points } }"
    return await _query(c, query, {"m": c.membership}, t)


@scenario(POLICY["tier.setLadder"])
async def set_tier_ladder(c: Ctx, t: str | None) -> str:
    return await _mutation(c, "setTierLadder", {"brandId": c.world.a.id, **LADDER}, t)


TIER_SUBSCRIPTION = (
    "subscription($m: ID, $a: Int) { tierChanged(membershipId: $m, afterSeq: $a) { seq toTier } }"
)


@scenario(POLICY["tier.watch"])
async def watch_tier(c: Ctx, t: str | None) -> str:
    # M holds a tier change: the ladder's first step is 1 point, and M has bought.
    ladder = await c.api.mutate(
        "setTierLadder", {"brandId": c.world.a.id, **LADDER}, c.world.a.hq, "ladder { basis }"
    )
    assert ladder["userErrors"] == [], ladder
    await c.world.earn(c.membership, 100, "authz-tier")
    first = await subscribe_first(c.app, c.schema, TIER_SUBSCRIPTION, {"m": c.membership, "a": 0}, t)
    return outcome(first)


@scenario(POLICY["referral.issueCode"])
async def issue_referral_code(c: Ctx, t: str | None) -> str:
    return await _mutation(c, "issueReferralCode", {"membershipId": c.membership}, t)


@scenario(POLICY["member.setBirthday"])
async def set_birthday(c: Ctx, t: str | None) -> str:
    return await _mutation(c, "setBirthday", {"membershipId": c.membership, "birthday": "1990-05-17"}, t)


# --- partnerships: between brand A and a third brand C, so that brand B is a stranger to them ---------

_partners: dict[str, Any] = {}


async def _brand_c(c: Ctx) -> Any:
    if "c" not in _partners:
        _partners["c"] = await make_brand(c.api, c.world.platform, "Cafe")
    return _partners["c"]


def _wash(code: str = "wash") -> dict[str, Any]:
    offer = {"code": code, "name": "W", "kind": "SERVICE", "pointsPrice": 10, "settlementFen": 10}
    return {"offers": [offer]}


async def _proposal(c: Ctx, points: Any, offers: Any, proposer: Any) -> str:
    input = {"name": "authz", "pointsBrandId": points.id, "offerBrandId": offers.id, "terms": _wash()}
    out = await c.api.mutate("proposePartnership", input, proposer.hq, "partnership { id }")
    assert out["userErrors"] == [], out
    return str(out["partnership"]["id"])


async def _active_a_c(c: Ctx, name: str) -> str:
    """An ACTIVE partnership in which A's points buy C's offers (one per scenario ``name``)."""
    if name not in _partners:
        brand_c = await _brand_c(c)
        pid = await _proposal(c, c.world.a, brand_c, c.world.a)
        input = {"partnershipId": pid, "version": 1, "accept": True}
        out = await c.api.mutate("respondToPartnershipTerms", input, brand_c.hq, "partnership { status }")
        assert out["partnership"] == {"status": "ACTIVE"}, out
        _partners[name] = pid
    return str(_partners[name])


@scenario(POLICY["partnership.propose"], reach="brand", hidden="INVALID_INPUT")
async def propose_partnership(c: Ctx, t: str | None) -> str:
    brand_c = await _brand_c(c)
    input = {"name": "p", "pointsBrandId": c.world.a.id, "offerBrandId": brand_c.id, "terms": _wash()}
    return await _mutation(c, "proposePartnership", input, t)


@scenario(POLICY["partnership.respond"], reach="brand")
async def respond_to_partnership(c: Ctx, t: str | None) -> str:
    brand_c = await _brand_c(c)
    pid = await _proposal(c, brand_c, c.world.a, brand_c)  # C proposes; A's HQ answers
    input = {"partnershipId": pid, "version": 1, "accept": False}
    return await _mutation(c, "respondToPartnershipTerms", input, t)


@scenario(POLICY["partnership.proposeTerms"], reach="brand")
async def propose_partnership_terms(c: Ctx, t: str | None) -> str:
    pid = await _active_a_c(c, "terms")
    return await _mutation(c, "proposePartnershipTerms", {"partnershipId": pid, "terms": _wash()}, t)


@scenario(POLICY["partnership.setStatus"], reach="brand")
async def set_partnership_status(c: Ctx, t: str | None) -> str:
    pid = await _active_a_c(c, "status")
    return await _mutation(c, "setPartnershipStatus", {"partnershipId": pid, "status": "SUSPENDED"}, t)


@scenario(POLICY["partnership.read"], reach="brand", hidden="NULL")
async def read_partnership(c: Ctx, t: str | None) -> str:
    return await _query(c, NODE, {"id": await _active_a_c(c, "read")}, t)


async def _c_member(c: Ctx) -> tuple[str, str]:
    """A member of C with points, and its token (C's points buy A's offers)."""
    if "c_member" not in _partners:
        brand_c = await _brand_c(c)
        out = await c.api.mutate("enrollMember", {"phone": new_phone()}, brand_c.store, "membership { id }")
        membership = out["membership"]["id"]
        earned = await c.world.earn(membership, 1_000_000, "authz-c-seed", brand_c)
        assert earned["userErrors"] == [], earned
        token = await c.api.mutate("issueMemberToken", {"membershipId": membership}, brand_c.hq, "token")
        _partners["c_member"] = (membership, token["token"])
    return _partners["c_member"]  # type: ignore[no-any-return]


async def _offer_of_c_at_a(c: Ctx) -> str:
    """The offer of an ACTIVE partnership in which C's points buy A's offers."""
    if "c_at_a" not in _partners:
        brand_c = await _brand_c(c)
        pid = await _proposal(c, brand_c, c.world.a, brand_c)
        input = {"partnershipId": pid, "version": 1, "accept": True}
        out = await c.api.mutate(
            "respondToPartnershipTerms", input, c.world.a.hq, "partnership { id terms { offers { id } } }"
        )
        _partners["c_at_a"] = (pid, out["partnership"]["terms"]["offers"][0]["id"])
    return str(_partners["c_at_a"][1])


async def _redeemed_at_a(c: Ctx, token: str | None) -> dict[str, Any]:
    membership, member_token = await _c_member(c)
    code = await c.api.mutate(
        "createRedemptionCode", {"membershipId": membership}, member_token, "code { code }"
    )
    input = {
        "code": code["code"]["code"],
        "offerId": await _offer_of_c_at_a(c),
        "idempotencyKey": f"authz-{next(_n)}",
    }
    body = await c.api.gql(
        "mutation($i: RedeemPartnerOfferInput!) { redeemPartnerOffer(input: $i) {"
        " userErrors { code } redemption { id } } }",
        {"i": input},
        token,
    )
    return body


@scenario(POLICY["partnership.createCode"])
async def create_redemption_code(c: Ctx, t: str | None) -> str:
    return await _mutation(c, "createRedemptionCode", {"membershipId": c.membership}, t)


@scenario(POLICY["partnership.redeem"], reach="brand")
async def redeem_partner_offer(c: Ctx, t: str | None) -> str:
    body = await _redeemed_at_a(c, t)
    if body.get("errors"):
        return outcome(body)
    errors = body["data"]["redeemPartnerOffer"]["userErrors"]
    return errors[0]["code"] if errors else "OK"


@scenario(POLICY["partnership.void"], reach="brand")
async def void_partner_redemption(c: Ctx, t: str | None) -> str:
    done = await _redeemed_at_a(c, c.world.a.store)
    rid = done["data"]["redeemPartnerOffer"]["redemption"]["id"]
    return await _mutation(
        c, "voidPartnerRedemption", {"redemptionId": rid, "idempotencyKey": f"authz-{next(_n)}"}, t
    )


@scenario(POLICY["partnership.readStatements"], reach="brand")
async def read_statements(c: Ctx, t: str | None) -> str:
    await _offer_of_c_at_a(c)
    query = "query($p: ID!) { partnershipOpenBalance(partnershipId: $p) { fen } }"
    return await _query(c, query, {"p": _partners["c_at_a"][0]}, t)


async def _past_statement(c: Ctx, status: str) -> str:
    """A statement of A's partnership with C for a period that is over."""
    from datetime import UTC, datetime, timedelta

    from hub.models import PartnershipStatement

    await _offer_of_c_at_a(c)
    start = datetime(2020, 1, 1, tzinfo=UTC) + timedelta(days=next(_n))
    stmt = await PartnershipStatement.create(
        partnership_id=pk(_partners["c_at_a"][0]),
        period="day",
        period_start=start,
        period_end=start + timedelta(days=1),
        status=status,
    )
    return str(GlobalID("PartnershipStatement", str(stmt.id)))


@scenario(POLICY["partnership.closeStatement"], reach="brand")
async def close_statement(c: Ctx, t: str | None) -> str:
    return await _mutation(
        c, "closePartnershipStatement", {"statementId": await _past_statement(c, "open")}, t
    )


@scenario(POLICY["partnership.settleStatement"], reach="brand")
async def settle_statement(c: Ctx, t: str | None) -> str:
    input = {"statementId": await _past_statement(c, "closed"), "paymentReference": "wire-1"}
    return await _mutation(c, "settlePartnershipStatement", input, t)


PARTNERSHIP_ACTIVITY = """subscription($p: ID!, $a: ID) {
  partnershipActivity(partnershipId: $p, afterRedemptionId: $a) { id memberPseudonym points }
}"""


@scenario(POLICY["partnership.watch"], reach="brand")
async def watch_partnership(c: Ctx, t: str | None) -> str:
    if "watched" not in _partners:
        first = await _redeemed_at_a(c, c.world.a.store)
        await _redeemed_at_a(c, c.world.a.store)
        _partners["watched"] = first["data"]["redeemPartnerOffer"]["redemption"]["id"]
    variables = {"p": _partners["c_at_a"][0], "a": _partners["watched"]}
    return outcome(await subscribe_first(c.app, c.schema, PARTNERSHIP_ACTIVITY, variables, t))


@scenario(POLICY["clearing.configure"])
async def configure_clearing(c: Ctx, t: str | None) -> str:
    return await _mutation(c, "setClearingPolicy", {"brandId": c.world.a.id, "funding": "ISSUING_STORE"}, t)


@scenario(POLICY["clearing.read"])
async def read_clearing(c: Ctx, t: str | None) -> str:
    query = "query($b: ID!) { clearingStatement(brandId: $b) { storeId netFen } }"
    return await _query(c, query, {"b": c.world.a.id}, t)


async def login(api: Api, codes: CapturingSender, phone: str) -> str:
    """An all-brands member token, the way a member app gets one: a code sent to the phone."""
    sent = await api.mutate("requestLoginCode", {"phone": phone}, "", "expiresAt")
    assert sent["userErrors"] == [], sent
    code = await codes.code_for(phone, count=len(codes.codes_for(phone)) + 1)
    verified = await api.mutate("verifyLoginCode", {"phone": phone, "code": code}, "", "token")
    assert verified["userErrors"] == [], verified
    return str(verified["token"])


@pytest.fixture(scope="module")
async def ctx(api: Api, app: Starlette, schema: Any, sent_codes: CapturingSender) -> Ctx:
    world = await make_world(api)
    membership, phone, member_token = await world.enroll()
    earned = await world.earn(membership, 100_000, "authz-seed")
    enrolled_b = await api.mutate("enrollMember", {"phone": phone}, world.b.store, "membership { id }")
    via_b = await api.mutate(
        "issueMemberToken", {"membershipId": enrolled_b["membership"]["id"]}, world.b.hq, "token"
    )
    _, other_phone, other = await world.enroll()
    key = await api.mutate(
        "createApiKey", {"role": "STORE", "storeId": world.a.store_id}, world.a.hq, "apiKey { id }"
    )
    program = {"brandId": world.a.id, "dailyPoints": 1}
    assert (await api.mutate("setCheckInProgram", program, world.a.hq, "program { enabled }"))[
        "userErrors"
    ] == []
    event = {"brandId": world.a.id, "code": EVENT, "name": "Survey", "points": 1, "limitPerMember": 1000}
    assert (await api.mutate("createEngagementEvent", event, world.a.hq, "event { id }"))["userErrors"] == []
    tokens = {
        "anonymous": None,
        "platform": world.platform,
        "hq_a": world.a.hq,
        "store_a": world.a.store,
        "hq_b": world.b.hq,
        "store_b": world.b.store,
        "member": member_token,
        "member_via_b": via_b["token"],
        "member_all_brands": await login(api, sent_codes, phone),
        "other_member": other,
    }
    return Ctx(
        api,
        app,
        schema,
        sent_codes,
        world,
        membership,
        earned["transaction"]["id"],
        key["apiKey"]["id"],
        other_phone,
        tokens,
    )


def test_every_action_has_a_scenario() -> None:
    assert sorted(SCENARIOS) == sorted(POLICY), "add a scenario for each new action (and only for those)"


@pytest.mark.parametrize("action", list(POLICY.values()), ids=list(POLICY))
async def test_authorisation_matrix(ctx: Ctx, action: Action) -> None:
    s = SCENARIOS[action.name]
    got = {actor.name: await s.run(ctx, ctx.tokens[actor.name]) for actor in ACTORS}
    want = {actor.name: expected(action, s, actor) for actor in ACTORS}
    assert got == want
