"""Lotteries (积分抽奖): HQ configures a draw; members (or stores for them) play it for points.

A lottery has a cost per play, prizes with integer weights (a prize is drawn with probability
weight / sum of weights) and optional quantities, a prize budget in points (each prize counts its
``value_points``), and a limit of plays per member per brand-local day. The draw is server-side:
``secrets.randbelow`` over the total weight (``draw``).

A play is ONE ledger transaction (kind ``lottery_play``): the cost from the member's points to the
burn account, and the prize drawn, with ledger guards moved in the same database transaction:

- ``lottery:l<id>:m<membership>:<day>`` counts the member's plays that day (LIMIT_REACHED);
- ``lottery:l<id>:p<prize>`` counts the prize's awards, bounded by its quantity;
- ``lottery:l<id>:budget`` counts the value awarded, bounded by the budget;
- a coupon prize carries its template's guard (``coupons.coupon_issue``), a gift prize the item's
  stock and limit (``catalog.gift_order_parts``).

When a prize's guard refuses (the prize, the budget, the coupon's quantity or the gift's stock has run
out), the same play is written as a no-win instead: the member still pays the play and learns that the
prize drawn was gone (``drawnPrize``). So no quantity or budget is ever exceeded however many plays
race, and nothing is decided by reading counters first. A retry with the same idempotency key answers
the first outcome (no second draw). The ``lottery_play`` row records every outcome, written after the
commit from the transaction's details and keyed by it. See docs/spending.md, "Lottery".
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tortoise import connections
from tortoise.exceptions import IntegrityError
from tortoise.expressions import Subquery
from tortoise.queryset import QuerySet
from tortoise.transactions import in_transaction

from hub import policy
from hub.auth import Principal
from hub.db import with_retries
from hub.domain import LimitPeriod, PrizeKind
from hub.errors import DomainError, ErrorCode, InvalidInput, NotFound
from hub.ledger.accounts import ASSET_CODE, AccountRef
from hub.ledger.audit import Violation
from hub.ledger.commands import Command, Guard, Leg, LotTerms, TransactionRecord
from hub.ledger.engine import LedgerWriter
from hub.ledger.idempotency import claim
from hub.ledger.sql import as_json
from hub.models import (
    Brand,
    CouponTemplate,
    GiftItem,
    GiftOrder,
    LedgerCounter,
    Lottery,
    LotteryPlay,
    LotteryPrize,
    Membership,
    TransactionKind,
)
from hub.resolvers import access, catalog, coupons
from hub.resolvers import validation as v
from hub.resolvers.checkin import brand_day
from hub.resolvers.claims import claimed
from hub.resolvers.earning import expires_at_for
from hub.resolvers.rewards import period_key

MAX_PRIZES = 20
MAX_WEIGHT = 1_000_000
MAX_PLAYS_PER_DAY = 1_000


# --- configuration ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PrizeTerms:
    name: str
    kind: PrizeKind
    weight: int
    quantity: int | None = None
    points: int = 0
    coupon_template_id: int | None = None
    gift_item_id: int | None = None
    value_points: int | None = None  # null: the prize's own value (points won; a gift's points price)


def _bounded(value: int, field: str, minimum: int, maximum: int = v.MAX_AMOUNT) -> int:
    if not minimum <= value <= maximum:
        raise InvalidInput(f"Must be between {minimum} and {maximum}.", field)
    return value


async def _check_prize(brand_id: int, i: int, prize: PrizeTerms) -> dict[str, Any]:
    """One prize's columns, checked (INVALID_INPUT / NOT_FOUND naming ``prizes.<i>.<field>``)."""
    at = f"prizes.{i}"
    kind = PrizeKind(prize.kind)
    values: dict[str, Any] = {
        "position": i,
        "name": v.text(prize.name, f"{at}.name", max_length=100),
        "kind": kind,
        "weight": _bounded(prize.weight, f"{at}.weight", 1, MAX_WEIGHT),
        "quantity": None if prize.quantity is None else _bounded(prize.quantity, f"{at}.quantity", 1),
        "points": 0,
        "coupon_template_id": None,
        "gift_item_id": None,
    }
    wrong = (
        (prize.points and kind is not PrizeKind.POINTS)
        or (prize.coupon_template_id is not None and kind is not PrizeKind.COUPON)
        or (prize.gift_item_id is not None and kind is not PrizeKind.GIFT)
    )
    if wrong:
        raise InvalidInput("A prize sets only the field of its kind.", f"{at}.kind")
    own_value = 0
    if kind is PrizeKind.POINTS:
        values["points"] = own_value = _bounded(prize.points, f"{at}.points", 1)
    elif kind is PrizeKind.COUPON:
        if prize.coupon_template_id is None:
            raise InvalidInput("Name the coupon template.", f"{at}.couponTemplateId")
        if not await CouponTemplate.exists(id=prize.coupon_template_id, brand_id=brand_id):
            raise NotFound("No such coupon template.", f"{at}.couponTemplateId")
        values["coupon_template_id"] = prize.coupon_template_id
    elif kind is PrizeKind.GIFT:
        if prize.gift_item_id is None:
            raise InvalidInput("Name the gift item.", f"{at}.giftItemId")
        item = await GiftItem.get_or_none(id=prize.gift_item_id, brand_id=brand_id)
        if item is None:
            raise NotFound("No such gift item.", f"{at}.giftItemId")
        values["gift_item_id"] = item.id
        own_value = item.points_price
    values["value_points"] = (
        own_value if prize.value_points is None else _bounded(prize.value_points, f"{at}.valuePoints", 0)
    )
    return values


async def create_lottery(
    principal: Principal | None,
    brand_id: int,
    code: str,
    name: str,
    cost_points: int,
    prizes: Sequence[PrizeTerms],
    plays_per_day: int | None = None,
    budget_points: int | None = None,
) -> tuple[Lottery, bool]:
    """HQ configures a lottery. The code is its natural key: the same lottery sent again answers the
    existing one (created=False); another with a taken code is ALREADY_EXISTS. Prizes are fixed."""
    brand = await access.get_brand(principal, policy.MANAGE_LOTTERIES, brand_id)
    code = v.text(code, "code", max_length=32)
    if not ASSET_CODE.fullmatch(code):
        raise InvalidInput(
            "Lower-case letters, digits, '_', '.', '-'; starting with a letter or digit.", "code"
        )
    name = v.text(name, "name", max_length=100)
    cost_points = _bounded(cost_points, "costPoints", 1)
    if plays_per_day is not None:
        _bounded(plays_per_day, "playsPerDay", 1, MAX_PLAYS_PER_DAY)
    if budget_points is not None:
        _bounded(budget_points, "budgetPoints", 0)
    if not 1 <= len(prizes) <= MAX_PRIZES:
        raise InvalidInput(f"Between 1 and {MAX_PRIZES} prizes.", "prizes")
    rows = [await _check_prize(brand.id, i, prize) for i, prize in enumerate(prizes)]
    fields: dict[str, Any] = {
        "name": name,
        "cost_points": cost_points,
        "plays_per_day": plays_per_day,
        "budget_points": budget_points,
    }
    existing = await Lottery.get_or_none(brand_id=brand.id, code=code)
    if existing is None:
        try:
            async with in_transaction():
                lottery = await Lottery.create(brand_id=brand.id, code=code, **fields)
                for row in rows:
                    await LotteryPrize.create(lottery_id=lottery.id, **row)
            return lottery, True
        except IntegrityError:  # created at the same moment by a retry of this request
            existing = await Lottery.get(brand_id=brand.id, code=code)
    if await _same(existing, fields, rows):
        return existing, False
    raise DomainError(ErrorCode.ALREADY_EXISTS, "This brand already has a lottery with that code.", "code")


async def _same(lottery: Lottery, fields: dict[str, Any], rows: list[dict[str, Any]]) -> bool:
    """A retry of the request that created ``lottery``: the same terms and the same prizes."""
    if any(getattr(lottery, k) != want for k, want in fields.items()):
        return False
    stored = await LotteryPrize.filter(lottery_id=lottery.id).order_by("position")
    return len(stored) == len(rows) and all(
        all(getattr(prize, k) == want for k, want in row.items())
        for prize, row in zip(stored, rows, strict=True)
    )


UNSET: Any = object()


async def update_lottery(
    principal: Principal | None,
    lottery_id: int,
    *,
    name: str | None = None,
    active: bool | None = None,
    plays_per_day: int | None = UNSET,
    budget_points: int | None = UNSET,
) -> Lottery:
    """HQ renames a lottery, stops it, or changes its daily limit or budget (for plays from now on; a
    budget below what was awarded only stops prizes with a value)."""
    lottery = await get_lottery(principal, policy.MANAGE_LOTTERIES, lottery_id, "lotteryId")
    if name is not None:
        lottery.name = v.text(name, "name", max_length=100)
    if active is not None:
        lottery.active = active
    if plays_per_day is not UNSET:
        lottery.plays_per_day = (
            None if plays_per_day is None else _bounded(plays_per_day, "playsPerDay", 1, MAX_PLAYS_PER_DAY)
        )
    if budget_points is not UNSET:
        lottery.budget_points = None if budget_points is None else _bounded(budget_points, "budgetPoints", 0)
    await lottery.save()
    return lottery


def lotteries(principal: Principal | None, brand_id: int | None = None) -> QuerySet[Lottery]:
    reach = access.brands(principal, policy.READ_LOTTERIES).values("id")
    query = Lottery.filter(brand_id__in=Subquery(reach))
    return query if brand_id is None else query.filter(brand_id=brand_id)


async def get_lottery(
    principal: Principal | None, action: policy.Action, lottery_id: int, field: str = "id"
) -> Lottery:
    p = policy.require(principal, action)
    lottery = await Lottery.filter(
        id=lottery_id, brand_id__in=Subquery(access.brands_in_reach(p).values("id"))
    ).first()
    if lottery is None:
        raise NotFound("No such lottery.", field)
    return lottery


async def prizes_of(lottery_ids: list[int]) -> list[list[LotteryPrize]]:
    """Each lottery's prizes in HQ's order (a DataLoader's batch)."""
    rows = await LotteryPrize.filter(lottery_id__in=lottery_ids).order_by("position")
    by: dict[int, list[LotteryPrize]] = {i: [] for i in lottery_ids}
    for row in rows:
        by[row.lottery_id].append(row)
    return [by[i] for i in lottery_ids]


async def counter_values(keys: list[str]) -> list[int]:
    """Guard counters by key (a DataLoader's batch): awards of a prize, value awarded of a lottery."""
    rows = {c.key: c.value for c in await LedgerCounter.filter(key__in=keys)}
    return [int(rows.get(k, 0)) for k in keys]


# --- the draw ---------------------------------------------------------------------------------------


def draw(prizes: Sequence[LotteryPrize], below: Callable[[int], int] = secrets.randbelow) -> LotteryPrize:
    """One prize, with probability weight / total weight: ``below(total)`` is uniform in [0, total)."""
    total = sum(p.weight for p in prizes)
    ticket = below(total)
    for prize in prizes:
        if ticket < prize.weight:
            return prize
        ticket -= prize.weight
    raise AssertionError("the ticket is below the total weight")


def prize_key(lottery_id: int, prize_id: int) -> str:
    return f"lottery:l{lottery_id}:p{prize_id}"


def budget_key(lottery_id: int) -> str:
    return f"lottery:l{lottery_id}:budget"


def day_key(lottery_id: int, membership_id: int, day: str) -> str:
    return f"lottery:l{lottery_id}:m{membership_id}:{day}"


_GONE = "The prize drawn has run out."


@dataclass(frozen=True, slots=True)
class PrizeParts:
    legs: tuple[Leg, ...] = ()
    guards: tuple[Guard, ...] = ()
    details: dict[str, Any] | None = None


async def _prize_parts(
    prize: LotteryPrize,
    lottery: Lottery,
    brand: Brand,
    membership: Membership,
    store_id: int | None,
    now: datetime,
) -> PrizeParts:
    """The legs, guards and details a prize adds to the play (NOT_AVAILABLE: it cannot be given)."""
    if prize.kind == PrizeKind.NOTHING:
        return PrizeParts()
    guards = [
        Guard(
            prize_key(lottery.id, prize.id),
            1,
            maximum=prize.quantity,
            code=ErrorCode.NOT_AVAILABLE,
            message=_GONE,
        )
    ]
    if prize.value_points:
        guards.append(
            Guard(
                budget_key(lottery.id),
                prize.value_points,
                maximum=lottery.budget_points,
                code=ErrorCode.NOT_AVAILABLE,
                message=_GONE,
            )
        )
    legs: tuple[Leg, ...] = ()
    details: dict[str, Any] = {}
    if prize.kind == PrizeKind.POINTS:
        member = AccountRef.member(brand.id, membership.id)
        lot = LotTerms(expires_at=await expires_at_for(brand, now))
        legs = (
            Leg(AccountRef.issuance_for(brand.id, membership.id), -prize.points),
            Leg(member, prize.points, lot=lot),
        )
    elif prize.kind == PrizeKind.COUPON:
        template = await CouponTemplate.get(id=prize.coupon_template_id)
        issue = coupons.coupon_issue(template, brand, membership.id, now=now)
        legs, details = issue.legs, issue.details
        guards += issue.guards
    else:
        item = await GiftItem.get(id=prize.gift_item_id)
        store = _gift_store(item, membership, store_id)
        if store is None:
            raise DomainError(ErrorCode.NOT_AVAILABLE, "No store collects this gift.")
        order = catalog.gift_order_parts(item, brand, membership.id, store, points=0, now=now)
        details = order.details
        guards += order.guards
    return PrizeParts(legs, tuple(guards), details)


def _gift_store(item: GiftItem, membership: Membership, store_id: int | None) -> int | None:
    """Where a gift prize is collected: the playing store, else the member's join store, if the item is
    collected there; else the item's first store."""
    for candidate in (store_id, membership.join_store_id):
        if candidate is not None and (not item.store_ids or candidate in item.store_ids):
            return candidate
    return item.store_ids[0] if item.store_ids else None


@dataclass(frozen=True, slots=True)
class PlayResult:
    play: LotteryPlay
    transaction: TransactionRecord
    points_balance: int | None
    replayed: bool


async def play(
    ledger: LedgerWriter,
    principal: Principal | None,
    lottery_id: int,
    membership_id: int,
    idempotency_key: str,
    now: datetime | None = None,
    below: Callable[[int], int] = secrets.randbelow,
) -> PlayResult:
    """A member (own token) or a store for a member plays once: one transaction, its cost and prize."""
    p = policy.require(principal, policy.PLAY_LOTTERY)
    key = v.idempotency_key(idempotency_key)
    membership = await access.get_membership(p, policy.PLAY_LOTTERY, membership_id)
    lottery = await get_lottery(p, policy.PLAY_LOTTERY, lottery_id, "lotteryId")
    if lottery.brand_id != membership.brand_id:
        raise NotFound("No such lottery.", "lotteryId")
    brand: Brand = membership.brand
    points = AccountRef.member(brand.id, membership.id)
    request_claim = claim(
        p.idempotency_scope, key, "playLottery", lottery=lottery.id, membership=membership.id
    )
    probe = Command(TransactionKind.LOTTERY_PLAY, brand.id, (), request_claim, report=points)
    if await claimed(request_claim):  # a retry: the first outcome, never a second draw
        outcome = await ledger.submit(probe)
        return PlayResult(
            await record_play(outcome.transaction), outcome.transaction, outcome.report_balance, True
        )
    if not lottery.active:
        raise DomainError(ErrorCode.NOT_AVAILABLE, "This lottery is closed.", "lotteryId")
    moment = now or datetime.now(UTC)
    day = period_key(LimitPeriod.DAY, brand_day(brand, moment))
    limit = day_key(lottery.id, membership.id, day) if lottery.plays_per_day is not None else ""
    drawn = draw(await LotteryPrize.filter(lottery_id=lottery.id).order_by("position"), below)

    def command(won: LotteryPrize | None, parts: PrizeParts) -> Command:
        guards = list(parts.guards)
        if limit:
            times = lottery.plays_per_day
            guards.append(
                Guard(limit, 1, maximum=times, message=f"At most {times} plays a day.", field="lotteryId")
            )
        return Command(
            kind=TransactionKind.LOTTERY_PLAY,
            brand_id=brand.id,
            legs=(
                Leg(points, -lottery.cost_points),
                Leg(AccountRef.burn_for(brand.id, membership.id), lottery.cost_points),
                *parts.legs,
            ),
            claim=request_claim,
            store_id=p.store_id,
            membership_id=membership.id,
            actor_key_id=p.key_id,
            reason=lottery.name,
            details={
                **(parts.details or {}),
                "lotteryId": lottery.id,
                "drawnPrizeId": drawn.id,
                "prizeId": won.id if won else None,
                "prizeKind": won.kind if won else PrizeKind.NOTHING.value,
                "costPoints": lottery.cost_points,
                "pointsWon": won.points if won and won.kind == PrizeKind.POINTS else 0,
                "valuePoints": won.value_points if won and won.kind != PrizeKind.NOTHING else 0,
                "limitKey": limit,
            },
            guards=tuple(guards),
            report=points,
        )

    won: LotteryPrize | None = None if drawn.kind == PrizeKind.NOTHING else drawn
    try:
        parts = (
            await _prize_parts(drawn, lottery, brand, membership, p.store_id, moment) if won else PrizeParts()
        )
        outcome = await ledger.submit(command(won, parts))
    except DomainError as error:
        # The prize (its quantity, the budget, the coupon's quantity, the gift's stock or validity) is
        # gone: the same play, as a no-win. Anything else (no points, the daily limit) fails the play.
        if won is None or error.code is not ErrorCode.NOT_AVAILABLE:
            raise
        outcome = await ledger.submit(command(None, PrizeParts()))
    row = await record_play(outcome.transaction)
    return PlayResult(row, outcome.transaction, outcome.report_balance, outcome.replayed)


async def record_play(txn: TransactionRecord) -> LotteryPlay:
    """The play row of a committed play (and the gift order it placed), written from its details if it
    is not there yet."""
    row = await LotteryPlay.get_or_none(transaction_id=txn.id)
    if row is not None:
        return row
    d = as_json(txn.details)
    if d.get("giftItemId") is not None:
        await catalog.record_order(txn)
    values = {
        "brand_id": txn.brand_id,
        "lottery_id": int(d["lotteryId"]),
        "membership_id": txn.membership_id,
        "prize_id": d["prizeId"],
        "drawn_prize_id": d["drawnPrizeId"],
        "cost_points": int(d["costPoints"]),
        "points_won": int(d["pointsWon"]),
        "value_points": int(d["valuePoints"]),
        "limit_key": d["limitKey"],
    }
    try:
        return await with_retries(lambda: LotteryPlay.create(transaction_id=txn.id, **values))
    except IntegrityError:  # a concurrent retry wrote it
        return await LotteryPlay.get(transaction_id=txn.id)


def plays_in_reach(p: Principal, action: policy.Action) -> QuerySet[LotteryPlay]:
    return LotteryPlay.filter(membership_id__in=Subquery(access.memberships(p, action).values("id")))


async def get_play(
    principal: Principal | None, action: policy.Action, play_id: int, field: str = "id"
) -> LotteryPlay:
    p = policy.require(principal, action)
    row = await plays_in_reach(p, action).filter(id=play_id).first()
    if row is None:
        raise NotFound("No such lottery play.", field)
    return row


def plays_of(membership: Membership) -> QuerySet[LotteryPlay]:
    return LotteryPlay.filter(membership_id=membership.id)


# What a play (already authorised) points at.


async def prize(prize_id: int) -> LotteryPrize:
    return await LotteryPrize.get(id=prize_id)


async def lottery_of(row: LotteryPlay) -> Lottery:
    return await Lottery.get(id=row.lottery_id)


async def gift_order_of(row: LotteryPlay) -> GiftOrder | None:
    return await GiftOrder.get_or_none(transaction_id=row.transaction_id)


# --- audit ------------------------------------------------------------------------------------------


def audit_queries(brand: str) -> dict[str, str]:
    """Lottery invariants against the ledger: check name -> query of (subject, detail) rows."""
    member_points = (
        "COALESCE((SELECT SUM(p.amount) FROM posting p JOIN account a ON a.id = p.account_id"
        " WHERE p.transaction_id = lp.transaction_id AND a.kind = 'member' AND a.asset = 'points'"
        " AND a.membership_id = lp.membership_id), 0)"
    )
    plays_of_prize = "SELECT COUNT(*) FROM lottery_play lp WHERE lp.prize_id = pr.id"
    value_awarded = "SELECT COALESCE(SUM(lp.value_points), 0) FROM lottery_play lp WHERE lp.lottery_id = l.id"
    return {
        # Every play transaction has its outcome row.
        "LOTTERY_PLAY_UNRECORDED": f"""
            SELECT 'transaction ' || t.id, 'lottery play without its outcome row'
            FROM ledger_transaction t WHERE t.{brand} AND t.kind = 'lottery_play'
              AND NOT EXISTS (SELECT 1 FROM lottery_play lp WHERE lp.transaction_id = t.id)""",
        # A play moved the member's points by exactly its prize's points less its cost.
        "LOTTERY_PLAY_POINTS": f"""
            SELECT 'lottery play ' || lp.id, 'won ' || lp.points_won || ', cost ' || lp.cost_points
                   || ', posted ' || {member_points}
            FROM lottery_play lp WHERE lp.{brand} AND {member_points} <> lp.points_won - lp.cost_points""",
        # Each prize's award counter equals its plays (and so never passed its quantity).
        "LOTTERY_PRIZE_COUNT": f"""
            SELECT 'lottery prize ' || pr.id,
                   'counted ' || COALESCE(MAX(c.value), 0) || ', won ' || ({plays_of_prize})
            FROM lottery_prize pr JOIN lottery l ON l.id = pr.lottery_id
            LEFT JOIN ledger_counter c ON c.key = 'lottery:l' || l.id || ':p' || pr.id
            WHERE l.{brand} GROUP BY pr.id HAVING COALESCE(MAX(c.value), 0) <> ({plays_of_prize})""",
        # Each lottery's budget counter equals the value of the prizes it awarded.
        "LOTTERY_BUDGET_COUNT": f"""
            SELECT 'lottery ' || l.id,
                   'counted ' || COALESCE(MAX(c.value), 0) || ', awarded ' || ({value_awarded})
            FROM lottery l LEFT JOIN ledger_counter c ON c.key = 'lottery:l' || l.id || ':budget'
            WHERE l.{brand} GROUP BY l.id HAVING COALESCE(MAX(c.value), 0) <> ({value_awarded})""",
        # Each member's daily counter equals the plays counted in it.
        "LOTTERY_DAILY_COUNT": f"""
            SELECT 'counter ' || lp.limit_key,
                   'counted ' || COALESCE(MAX(c.value), 0) || ', plays ' || COUNT(*)
            FROM lottery_play lp LEFT JOIN ledger_counter c ON c.key = lp.limit_key
            WHERE lp.{brand} AND lp.limit_key <> ''
            GROUP BY lp.limit_key HAVING COALESCE(MAX(c.value), 0) <> COUNT(*)""",
    }


async def audit(brand_id: int | None) -> list[Violation]:
    """The lottery checks of one brand (or all): one violation per offending row."""
    brand = f"brand_id = {int(brand_id)}" if brand_id is not None else "brand_id IS NOT NULL"
    conn = connections.get("default")
    found: list[Violation] = []
    for check, query in audit_queries(brand).items():
        _, rows = await conn.execute_query(query)
        found.extend(Violation(check, str(row[0]), str(row[1])) for row in rows)
    return found
