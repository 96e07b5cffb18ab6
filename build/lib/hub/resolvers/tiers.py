"""Tiers: a brand's ladder, qualification, upgrades at once, downgrades at the period's end, events.

Qualification counts purchases (``purchase`` rows, net of ``purchase_refund``), never the balance:
points earned, or fen spent, in a rolling window of N days or in the brand-local calendar year.

- **Upgrade** at once, after the purchase that crosses a threshold: an unlocked sum first (one query,
  the common case ends there), and only when it says "up" a transaction that locks the membership row,
  sums again and writes the change. Of concurrent purchases the last to commit sees them all, and the
  lock makes the change happen once, with one event.
- **Downgrade** only at a period's end, by the brand's policy (none, one step, recompute), in the
  ``tiers.review`` job: calendar-year ladders are reviewed when the brand-local year ends, on that
  year; rolling ladders at each brand-local month end, on the N days before it. A review writes at
  most one change per membership and period (a unique index), so a re-run chunk changes nothing.
- Every change is a ``tier_change`` row (with its reason and the qualifying value), numbered per
  membership (``seq``), and published after its commit on ``tiers:m<membership id>``. The
  ``tierChanged`` stream fills any gap in ``seq`` from the rows, so a lost message is recovered.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from tortoise import connections
from tortoise.transactions import in_transaction

from hub import policy
from hub.auth import Principal
from hub.db import sql, with_retries
from hub.domain import TierBasis, TierDirection, TierDowngrade, TierWindow
from hub.errors import InvalidInput
from hub.events.broker import RESYNC, LocalBroker
from hub.models import BASE_TIER, Brand, Membership, Tier, TierChange, TierLadder
from hub.resolvers import access, change_log
from hub.resolvers import validation as v
from hub.resolvers.earn_rules import TIER_CODE
from hub.resolvers.earning import BrandCache
from hub.resolvers.maturity import job_time
from hub.worker.handlers import Chunk, JobContext, JSONCursor, Plan
from hub.worker.schedules import Schedule

log = logging.getLogger(__name__)
MAX_TIERS = 10
MAX_THRESHOLD = 10**15


@dataclass(frozen=True, slots=True)
class TierStep:
    code: str
    name: str
    threshold: int


@dataclass(frozen=True)
class Ladder:
    brand_id: int
    basis: TierBasis
    window: TierWindow
    rolling_days: int
    downgrade: TierDowngrade
    tiers: tuple[TierStep, ...]  # above the base tier, lowest threshold first
    timezone: str

    def rank(self, code: str) -> int:
        """0 for the base tier (and for a code the ladder does not know), 1 for the first step, ..."""
        for i, step in enumerate(self.tiers, start=1):
            if step.code == code:
                return i
        return 0

    def code_at(self, rank: int) -> str:
        return self.tiers[rank - 1].code if rank > 0 else BASE_TIER

    def qualifying(self, value: int) -> str:
        best = BASE_TIER
        for step in self.tiers:
            if value >= step.threshold:
                best = step.code
        return best

    def step(self, code: str) -> TierStep | None:
        return next((s for s in self.tiers if s.code == code), None)

    @property
    def unit(self) -> str:
        return "points" if self.basis is TierBasis.POINTS else "fen"

    def current_window(self, now: datetime) -> tuple[datetime, datetime, str]:
        """The window an upgrade is judged on at ``now``: (start, end, how the reason names it)."""
        if self.window is TierWindow.CALENDAR_YEAR:
            year = now.astimezone(ZoneInfo(self.timezone)).year
            start, end = _year(year, self.timezone)
            return start, end, f"in {year}"
        return (
            now - timedelta(days=self.rolling_days),
            now + timedelta(seconds=1),
            (f"in the last {self.rolling_days} days"),
        )

    def last_period(self, now: datetime) -> tuple[str, datetime, datetime]:
        """The review period that ended last before ``now``: (label, window start, window end)."""
        local = now.astimezone(ZoneInfo(self.timezone))
        if self.window is TierWindow.CALENDAR_YEAR:
            start, end = _year(local.year - 1, self.timezone)
            return str(local.year - 1), start, end
        end = datetime(local.year, local.month, 1, tzinfo=ZoneInfo(self.timezone)).astimezone(UTC)
        previous = (end - timedelta(days=1)).astimezone(ZoneInfo(self.timezone))
        return f"{previous.year:04d}-{previous.month:02d}", end - timedelta(days=self.rolling_days), end


def _year(year: int, timezone: str) -> tuple[datetime, datetime]:
    zone = ZoneInfo(timezone)
    return (
        datetime(year, 1, 1, tzinfo=zone).astimezone(UTC),
        datetime(year + 1, 1, 1, tzinfo=zone).astimezone(UTC),
    )


async def _load_ladder(brand_id: int) -> tuple[int, Ladder | None]:
    brand = await Brand.get(id=brand_id)  # the version first: the rows read after are at least as new
    ladder = await TierLadder.get_or_none(brand_id=brand_id)
    if ladder is None:
        return brand.rules_version, None
    steps = await Tier.filter(brand_id=brand_id).order_by("threshold")
    return brand.rules_version, Ladder(
        brand_id,
        TierBasis(ladder.basis),
        TierWindow(ladder.window),
        ladder.rolling_days,
        TierDowngrade(ladder.downgrade),
        tuple(TierStep(s.code, s.name, s.threshold) for s in steps),
        brand.timezone,
    )


LADDERS: BrandCache[Ladder | None] = BrandCache(_load_ladder)


async def ladder_of(brand: Brand) -> Ladder | None:
    return await LADDERS.get(brand)


# --- configuring ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TierInput:
    code: str
    name: str
    threshold: int


async def set_tier_ladder(
    principal: Principal | None,
    brand_id: int,
    basis: TierBasis,
    window: TierWindow,
    downgrade: TierDowngrade,
    steps: Sequence[TierInput],
    rolling_days: int | None = None,
) -> Ladder:
    """HQ replaces its brand's ladder. Members keep their tier; a tier some member holds cannot be
    removed. A new ladder's first review is at the end of the current period."""
    p = policy.require(principal, policy.SET_TIER_LADDER)
    brand = await access.get_brand(p, policy.SET_TIER_LADDER, brand_id)
    if not 1 <= len(steps) <= MAX_TIERS:
        raise InvalidInput(f"Between 1 and {MAX_TIERS} tiers above the base tier.", "tiers")
    codes = [s.code for s in steps]
    for s in steps:
        if not TIER_CODE.fullmatch(s.code) or s.code == BASE_TIER:
            raise InvalidInput(f"Lower-case letters, digits, _ and -; not {BASE_TIER!r}.", "tiers.code")
        v.text(s.name, "tiers.name", max_length=64)
        if not 1 <= s.threshold <= MAX_THRESHOLD:
            raise InvalidInput(f"A threshold is between 1 and {MAX_THRESHOLD}.", "tiers.threshold")
    if len(set(codes)) != len(codes):
        raise InvalidInput("Each tier code once.", "tiers.code")
    thresholds = [s.threshold for s in steps]
    if thresholds != sorted(set(thresholds)):
        raise InvalidInput("Thresholds rise strictly from one tier to the next.", "tiers.threshold")
    if window is TierWindow.ROLLING_DAYS:
        if rolling_days is None or not 1 <= rolling_days <= 3660:
            raise InvalidInput("A rolling window is between 1 and 3660 days.", "rollingDays")
    rolling = rolling_days or 365
    held = await Membership.filter(brand_id=brand.id).exclude(tier=BASE_TIER).exclude(tier__in=codes).first()
    if held is not None:
        raise InvalidInput(f"Members hold tier {held.tier!r}: keep it in the ladder.", "tiers")

    async def write() -> None:
        async with in_transaction() as conn:
            # The version first: it is the write that serialises ladder changes of one brand.
            await conn.execute_query(
                sql(conn, "UPDATE brand SET rules_version = rules_version + 1 WHERE id = ?"), [brand.id]
            )
            ladder = await TierLadder.get_or_none(brand_id=brand.id, using_db=conn)
            before = await _ladder_record(brand.id, ladder, conn)
            if ladder is None:
                ladder = TierLadder(brand_id=brand.id)
                draft = Ladder(brand.id, basis, window, rolling, downgrade, (), brand.timezone)
                ladder.reviewed_period = draft.last_period(datetime.now(UTC))[0]
            ladder.basis, ladder.window, ladder.rolling_days, ladder.downgrade = (
                basis,
                window,
                rolling,
                downgrade,
            )
            await ladder.save(using_db=conn)
            await Tier.filter(brand_id=brand.id).exclude(code__in=codes).using_db(conn).delete()
            for s in steps:
                updated = (
                    await Tier.filter(brand_id=brand.id, code=s.code)
                    .using_db(conn)
                    .update(name=s.name.strip(), threshold=s.threshold)
                )
                if not updated:
                    await Tier.create(
                        brand_id=brand.id,
                        code=s.code,
                        name=s.name.strip(),
                        threshold=s.threshold,
                        using_db=conn,
                    )
            after = await _ladder_record(brand.id, ladder, conn)
            await change_log.record(
                p, policy.SET_TIER_LADDER, brand, before=before, after=after, using_db=conn
            )

    await with_retries(write)
    refreshed = await Brand.get(id=brand.id)
    ladder = await LADDERS.get(refreshed)
    assert ladder is not None
    return ladder


async def _ladder_record(brand_id: int, ladder: TierLadder | None, conn: Any) -> dict | None:
    """A ladder as the change log keeps it (hub/resolvers/change_log.py)."""
    if ladder is None:
        return None
    tiers = await Tier.filter(brand_id=brand_id).using_db(conn).order_by("threshold")
    return {
        **(change_log.snapshot(ladder, ("basis", "window", "rolling_days", "downgrade")) or {}),
        "tiers": [{"code": t.code, "name": t.name, "threshold": t.threshold} for t in tiers],
    }


# --- qualification ----------------------------------------------------------------------------------


def _stamp(conn: Any, moment: datetime) -> Any:
    return moment if conn.capabilities.dialect == "postgres" else moment.astimezone(UTC).isoformat(" ")


async def qualifying_values(
    ladder: Ladder, membership_ids: Sequence[int], start: datetime, end: datetime, conn: Any = None
) -> dict[int, int]:
    """Points earned (or fen spent) by purchases in [start, end), net of their refunds."""
    conn = conn or connections.get("default")
    column = "points" if ladder.basis is TierBasis.POINTS else "amount_fen"
    marks = ", ".join("?" * len(membership_ids))
    values: dict[int, int] = dict.fromkeys(membership_ids, 0)
    for table, sign in (("purchase", 1), ("purchase_refund", -1)):
        _, rows = await conn.execute_query(
            sql(
                conn,
                f"SELECT membership_id, SUM({column}) AS total FROM {table}"
                f" WHERE membership_id IN ({marks}) AND purchased_at >= ? AND purchased_at < ?"
                " GROUP BY membership_id",
            ),
            [*membership_ids, _stamp(conn, start), _stamp(conn, end)],
        )
        for row in rows:
            values[row["membership_id"]] += sign * int(row["total"] or 0)
    return values


@dataclass(frozen=True, slots=True)
class TierChanged:
    """A committed tier change, as the ``tierChanged`` stream sends it."""

    change_id: int
    membership_id: int
    brand_id: int
    seq: int
    from_tier: str
    to_tier: str
    direction: TierDirection
    reason: str
    value: int
    transaction_id: int | None
    created_at: datetime

    @classmethod
    def of(cls, row: TierChange) -> TierChanged:
        return cls(
            row.id,
            row.membership_id,
            row.brand_id,
            row.seq,
            row.from_tier,
            row.to_tier,
            TierDirection(row.direction),
            row.reason,
            row.value,
            row.transaction_id,
            row.created_at,
        )

    def to_message(self) -> dict[str, Any]:
        return {
            "changeId": self.change_id,
            "membershipId": self.membership_id,
            "brandId": self.brand_id,
            "seq": self.seq,
            "from": self.from_tier,
            "to": self.to_tier,
            "direction": self.direction.value,
            "reason": self.reason,
            "value": self.value,
            "transactionId": self.transaction_id,
            "createdAt": self.created_at.isoformat(),
        }

    @classmethod
    def from_message(cls, m: dict[str, Any]) -> TierChanged:
        return cls(
            int(m["changeId"]),
            int(m["membershipId"]),
            int(m["brandId"]),
            int(m["seq"]),
            m["from"],
            m["to"],
            TierDirection(m["direction"]),
            m["reason"],
            int(m["value"]),
            m["transactionId"],
            datetime.fromisoformat(m["createdAt"]),
        )


def tier_channel(membership_id: int) -> str:
    return f"tiers:m{membership_id}"


async def publish(broker: LocalBroker | None, changes: Sequence[TierChanged]) -> None:
    """Announce committed changes. Best effort: the rows are the truth and the stream fills gaps."""
    if broker is None or not changes:
        return
    try:
        await broker.publish_many([(tier_channel(c.membership_id), c.to_message()) for c in changes])
    except Exception:  # the stream recovers it from the rows at the next event or reconnect
        log.warning("could not publish %d tier changes", len(changes), exc_info=True)


async def _change(
    conn: Any,
    membership_id: int,
    brand_id: int,
    from_tier: str,
    to_tier: str,
    direction: TierDirection,
    reason: str,
    value: int,
    *,
    transaction_id: int | None = None,
    review_period: str | None = None,
) -> TierChange:
    """Write one change under the membership's lock (the caller holds it) and set the tier."""
    last = await TierChange.filter(membership_id=membership_id).using_db(conn).order_by("-seq").first()
    row = await TierChange.create(
        brand_id=brand_id,
        membership_id=membership_id,
        seq=(last.seq if last else 0) + 1,
        from_tier=from_tier,
        to_tier=to_tier,
        direction=direction,
        reason=reason[:200],
        value=value,
        transaction_id=transaction_id,
        review_period=review_period,
        using_db=conn,
    )
    await Membership.filter(id=membership_id).using_db(conn).update(tier=to_tier)
    return row


async def _lock_membership(conn: Any, membership_id: int) -> str | None:
    """Lock the membership's row for this transaction (its first statement is a write, so SQLite takes
    its write lock at once) and return its tier."""
    await conn.execute_query(sql(conn, "UPDATE membership SET tier = tier WHERE id = ?"), [membership_id])
    _, rows = await conn.execute_query(sql(conn, "SELECT tier FROM membership WHERE id = ?"), [membership_id])
    return str(rows[0]["tier"]) if rows else None


async def upgrade_after_purchase(
    brand: Brand,
    membership_id: int,
    tier: str,
    transaction_id: int,
    broker: LocalBroker | None = None,
    now: datetime | None = None,
) -> TierChanged | None:
    """Upgrade the membership now if its qualifying value crossed a higher tier's threshold."""
    ladder = await LADDERS.get(brand)
    if ladder is None or not ladder.tiers:
        return None
    start, end, label = ladder.current_window(now or datetime.now(UTC))
    value = (await qualifying_values(ladder, [membership_id], start, end))[membership_id]
    if ladder.rank(ladder.qualifying(value)) <= ladder.rank(tier):
        return None

    async def write() -> TierChange | None:
        async with in_transaction() as conn:
            current = await _lock_membership(conn, membership_id)
            if current is None:
                return None
            counted = (await qualifying_values(ladder, [membership_id], start, end, conn))[membership_id]
            target = ladder.qualifying(counted)
            if ladder.rank(target) <= ladder.rank(current):
                return None  # another purchase upgraded it meanwhile
            step = ladder.step(target)
            assert step is not None
            reason = f"{counted} {ladder.unit} {label} reached {step.name} ({step.threshold})"
            return await _change(
                conn,
                membership_id,
                brand.id,
                current,
                target,
                TierDirection.UP,
                reason,
                counted,
                transaction_id=transaction_id,
            )

    row = await with_retries(write)
    if row is None:
        return None
    event = TierChanged.of(row)
    await publish(broker, [event])
    return event


# --- the review at a period's end ---------------------------------------------------------------------


def review_target(ladder: Ladder, current: str, value: int) -> str | None:
    """The tier a review moves a member to, or None to leave it."""
    rank, qualifies = ladder.rank(current), ladder.rank(ladder.qualifying(value))
    if rank == 0 or qualifies >= rank or ladder.downgrade is TierDowngrade.NONE:
        return None
    if ladder.downgrade is TierDowngrade.ONE_STEP:
        return ladder.code_at(rank - 1)
    return ladder.code_at(qualifies)


async def review_memberships(
    ladder: Ladder,
    brand_id: int,
    period: tuple[str, datetime, datetime],
    membership_ids: Sequence[int],
    broker: LocalBroker | None = None,
) -> int:
    """Review these memberships for ``period``; returns how many were moved down."""
    label, start, end = period
    values = await qualifying_values(ladder, membership_ids, start, end)
    moved: list[TierChanged] = []
    for membership_id in membership_ids:

        async def write(membership_id: int = membership_id) -> TierChange | None:
            async with in_transaction() as conn:
                current = await _lock_membership(conn, membership_id)
                if current is None:
                    return None
                if (
                    await TierChange.filter(membership_id=membership_id, review_period=label)
                    .using_db(conn)
                    .exists()
                ):
                    return None  # this period's review was done (a re-run chunk)
                target = review_target(ladder, current, values[membership_id])
                if target is None:
                    return None
                reason = (
                    f"review of {label}: {values[membership_id]} {ladder.unit},"
                    f" {ladder.downgrade.value.replace('_', ' ')} to {target}"
                )
                return await _change(
                    conn,
                    membership_id,
                    brand_id,
                    current,
                    target,
                    TierDirection.DOWN,
                    reason,
                    values[membership_id],
                    review_period=label,
                )

        row = await with_retries(write)
        if row is not None:
            moved.append(TierChanged.of(row))
    await publish(broker, moved)
    return len(moved)


# --- reading ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TierStatus:
    tier: str
    name: str
    value: int
    next_tier: TierStep | None
    window_start: datetime
    window_end: datetime


async def tier_status(membership: Membership, brand: Brand) -> TierStatus | None:
    """Where the membership stands on its brand's ladder now; None without a ladder."""
    ladder = await LADDERS.get(brand)
    if ladder is None:
        return None
    start, end, _ = ladder.current_window(datetime.now(UTC))
    value = (await qualifying_values(ladder, [membership.id], start, end))[membership.id]
    rank = ladder.rank(membership.tier)
    step = ladder.step(membership.tier)
    following = ladder.tiers[rank] if rank < len(ladder.tiers) else None
    return TierStatus(membership.tier, step.name if step else "Member", value, following, start, end)


def changes_of(membership: Membership) -> Any:
    return TierChange.filter(membership_id=membership.id)


async def _rows_after(membership_id: int, seq: int, up_to: int | None = None) -> list[TierChanged]:
    query = TierChange.filter(membership_id=membership_id, seq__gt=seq)
    if up_to is not None:
        query = query.filter(seq__lte=up_to)
    return [TierChanged.of(r) for r in await query.order_by("seq").limit(500)]


async def tier_events(
    broker: LocalBroker, membership_ids: Sequence[int], after: dict[int, int]
) -> AsyncGenerator[TierChanged, None]:
    """Tier changes of these memberships: those after ``after[m]`` first, then live ones, with no gap
    and no duplicate per membership (a missing ``seq`` is read from the rows)."""
    async with broker.subscribe([tier_channel(m) for m in membership_ids]) as sub:
        last: dict[int, int] = {}
        for mid in membership_ids:
            if mid in after:
                last[mid] = after[mid]
                for event in await _rows_after(mid, after[mid]):
                    last[mid] = event.seq
                    yield event
            else:
                newest = await TierChange.filter(membership_id=mid).order_by("-seq").first()
                last[mid] = newest.seq if newest else 0
        while True:
            message = await sub.get()
            if message is RESYNC or not isinstance(message, dict):
                for mid in membership_ids:
                    for event in await _rows_after(mid, last[mid]):
                        last[mid] = event.seq
                        yield event
                continue
            event = TierChanged.from_message(message)
            mid = event.membership_id
            if event.seq <= last[mid]:
                continue
            for missed in await _rows_after(mid, last[mid], event.seq - 1):
                yield missed
            last[mid] = event.seq
            yield event


async def current_seq(membership_id: int) -> int:
    newest = await TierChange.filter(membership_id=membership_id).order_by("-seq").first()
    return newest.seq if newest else 0


# --- the review job ---------------------------------------------------------------------------------

REVIEW_KIND = "tiers.review"
REVIEW_SCHEDULE = Schedule("tier-review", REVIEW_KIND, timedelta(hours=1))


class TierReview:
    """Reviews every brand whose ladder has a downgrade policy and a period that ended unreviewed.

    The cursor names the brands due at planning (with the job's time) and where in the current brand's
    memberships the review stands; a brand is marked reviewed for the period once all its members are
    done, so a crash before that reviews the rest again (changes already written are kept: one per
    membership and period).
    """

    kind = REVIEW_KIND

    def __init__(self, chunk_size: int = 200) -> None:
        self.chunk_size = chunk_size

    async def plan(self, ctx: JobContext) -> Plan:
        now = job_time(ctx.params)
        due: list[list[Any]] = []
        total = 0
        for row in await TierLadder.exclude(downgrade=TierDowngrade.NONE).order_by("brand_id"):
            ladder = await LADDERS.get(await Brand.get(id=row.brand_id))
            if ladder is None or ladder.last_period(now)[0] == row.reviewed_period:
                continue
            last = await Membership.filter(brand_id=row.brand_id).order_by("-id").first()
            due.append([row.brand_id, last.id if last else 0])
            total += await Membership.filter(brand_id=row.brand_id).exclude(tier=BASE_TIER).count()
        return Plan(total=total, cursor={"brands": due, "i": 0, "after": 0, "now": now.isoformat()})

    async def run_chunk(self, ctx: JobContext, cursor: JSONCursor) -> Chunk:
        brands, i = cursor["brands"], int(cursor["i"])
        if i >= len(brands):
            return Chunk(None, 0)
        brand_id, last = brands[i]
        brand = await Brand.get(id=brand_id)
        ladder = await LADDERS.get(brand)
        now = datetime.fromisoformat(cursor["now"])
        ids: list[int] = []
        if ladder is not None:
            period = ladder.last_period(now)
            found = (
                await Membership.filter(brand_id=brand_id, id__gt=cursor["after"], id__lte=last)
                .exclude(tier=BASE_TIER)
                .order_by("id")
                .limit(self.chunk_size)
                .values_list("id", flat=True)
            )
            ids = [int(x) for x in found]  # type: ignore[call-overload]
            if ids:
                ctx.ensure_lease()
                await review_memberships(ladder, brand_id, period, ids, ctx.broker)
        if len(ids) == self.chunk_size:
            return Chunk({**cursor, "after": ids[-1]}, len(ids))
        if ladder is not None:
            await TierLadder.filter(brand_id=brand_id).update(reviewed_period=ladder.last_period(now)[0])
        following = {**cursor, "i": i + 1, "after": 0}
        return Chunk(following if i + 1 < len(brands) else None, len(ids))
