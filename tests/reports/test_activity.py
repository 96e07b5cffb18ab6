"""Activity and liability reports agree with the ledger: recomputed from postings, across brand-local
midnight, folded or not, on both backends."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from hub.ledger.accounts import AccountRef
from hub.ledger.commands import Command, Leg, LotTerms
from hub.ledger.engine import LedgerWriter
from hub.ledger.idempotency import claim
from hub.models import Account, Brand, TransactionKind
from hub.resolvers import report_rollup
from hub.resolvers.expiry import expire_due
from tests.helpers import Api, World, make_brand, make_world, new_phone, pk
from tests.reports.support import Clock, activity, key, recomputed, shown

LIABILITY = (
    "liability { points { available pending total valueFen }"
    " byStore { store { id } available pending valueFen } assets { asset assetCode accountKind balance } }"
)


@pytest.fixture(scope="module")
async def world(api: Api) -> World:
    return await make_world(api)


async def _brand_in(world: World, zone: str) -> Any:
    brand = await make_brand(world.api, world.platform, f"Zone {zone}")
    out = await world.api.mutate(
        "updateBrandSettings",
        {"brandId": brand.id, "timezone": zone, "pointValuePoints": 100, "pointValueFen": 30},
        brand.hq,
        "brand { id }",
    )
    assert out["userErrors"] == [], out
    return brand


async def _enroll(world: World, brand: Any, store: str) -> str:
    out = await world.api.mutate("enrollMember", {"phone": new_phone()}, store, "membership { id }")
    assert out["userErrors"] == [], out
    return str(out["membership"]["id"])


def _command(brand_id: int, kind: TransactionKind, legs: tuple[Leg, ...], m: int) -> Command:
    k = key("direct")
    return Command(
        kind=kind, brand_id=brand_id, legs=legs, claim=claim("test", k, "direct", k=k), membership_id=m
    )


@pytest.mark.parametrize("zone", ["Asia/Shanghai", "Europe/Berlin"])
async def test_activity_per_day_week_month_and_store_equals_the_postings_across_local_midnight(
    world: World, ledger: LedgerWriter, monkeypatch: pytest.MonkeyPatch, zone: str
) -> None:
    clock = Clock(monkeypatch)
    brand = await _brand_in(world, zone)
    brand_id = pk(brand.id)
    tz = ZoneInfo(zone)
    m1 = await _enroll(world, brand, brand.store)
    m2 = await _enroll(world, brand, brand.store2)
    api = world.api

    def local(text: str) -> datetime:
        return datetime.fromisoformat(text).replace(tzinfo=tz)

    async def earn(m: str, fen: int, store: str) -> None:
        out = await api.mutate(
            "recordPurchase", {"membershipId": m, "amountFen": fen, "idempotencyKey": key()}, store, "points"
        )
        assert out["userErrors"] == [], out

    async def points(name: str, m: str, n: int, token: str) -> None:
        input = {"membershipId": m, "points": n, "reason": "t", "idempotencyKey": key()}
        out = await api.mutate(name, input, token, "points")
        assert out["userErrors"] == [], out

    mid1, mid2 = pk(m1), pk(m2)
    # (brand-local time, what happens); a fold now and then leaves some days folded, some not.
    steps: list[tuple[str, Any]] = [
        ("2026-03-01T23:59:59", lambda: earn(m1, 12_345, brand.store)),
        ("2026-03-02T00:00:00", lambda: earn(m2, 5_000, brand.store2)),
        ("2026-03-02T00:00:01", lambda: points("redeemPoints", m1, 30, brand.store)),
        ("fold", None),
        ("2026-03-02T12:00:00", lambda: points("adjustPoints", m2, 7, brand.hq)),
        ("2026-03-02T12:00:01", lambda: points("adjustPoints", m2, -3, brand.hq)),
        (  # 5 points that expire at 00:25, expired by lifecycle's run at 00:30
            "2026-03-03T00:20:00",
            lambda: ledger.submit(
                _command(
                    brand_id,
                    TransactionKind.TOP_UP,
                    (
                        Leg(AccountRef.issuance(brand_id), -5),
                        Leg(
                            AccountRef.member(brand_id, mid1),
                            5,
                            lot=LotTerms(expires_at=local("2026-03-03T00:25:00").astimezone(UTC)),
                        ),
                    ),
                    mid1,
                )
            ),
        ),
        ("2026-03-03T00:30:00", lambda: expire_due(ledger, local("2026-03-03T00:30:00"), brand_id=brand_id)),
        (
            "2026-03-03T01:00:00",
            lambda: ledger.submit(
                _command(
                    brand_id,
                    TransactionKind.TOP_UP,  # any kind the ledger knows flows in
                    (Leg(AccountRef.issuance(brand_id), -40), Leg(AccountRef.member(brand_id, mid2), 40)),
                    mid2,
                )
            ),
        ),
        (
            "2026-03-03T02:00:00",  # a kind that neither issues nor burns: counted as a transaction
            lambda: ledger.submit(
                _command(
                    brand_id,
                    TransactionKind.TRANSFER,
                    (
                        Leg(AccountRef.member(brand_id, mid2), -10),
                        Leg(AccountRef.member(brand_id, mid1), 10, mirror=0),
                    ),
                    mid2,
                )
            ),
        ),
        ("fold", None),
        ("2026-03-31T23:59:59", lambda: earn(m2, 900, brand.store)),
        ("2026-04-01T00:00:00", lambda: points("redeemPoints", m2, 1, brand.store2)),
    ]
    for when, run in steps:
        if when == "fold":
            await report_rollup.fold_all()
            continue
        with clock.at(local(when)):
            await run()

    first, last = date(2026, 2, 28), date(2026, 4, 2)
    expected = await recomputed(brand_id, zone)
    assert set(expected) == {
        date(2026, 3, 1),
        date(2026, 3, 2),
        date(2026, 3, 3),
        date(2026, 3, 31),
        date(2026, 4, 1),
    }
    days = await activity(api, brand.hq, brand.id, first, last)
    assert [d["start"] for d in days] == [(first + timedelta(n)).isoformat() for n in range(34)]
    empty = shown({**days[0]})
    for row in days:
        day = date.fromisoformat(row["start"])
        assert row["end"] == row["start"]
        assert shown(row) == expected.get(day, empty), day
        issued, redeemed = int(row["issued"]), int(row["redeemed"])
        assert row["redemptionRate"] == (pytest.approx(redeemed / issued) if issued else None)
    # The midnight edges: the purchase one second before midnight is the 1st's, the next one the 2nd's.
    assert expected[date(2026, 3, 1)]["purchases"] == 1 and expected[date(2026, 3, 1)]["salesFen"] == 12_345
    assert expected[date(2026, 3, 2)]["redeemed"] == 30 and expected[date(2026, 3, 2)]["adjusted"] == 4
    assert expected[date(2026, 3, 3)] | {} == {
        **expected[date(2026, 3, 3)],
        "expired": 5,
        "issuedByKind": {"top_up": 45},
        "transactions": 4,
    }

    # Months and weeks are the sums of their days; stores add up to the brand.
    def total(rows: list[dict], start: date, end: date) -> dict[str, Any]:
        out: dict[str, Any] = {"issuedByKind": {}, "redeemedByKind": {}}
        for d, v in expected.items():
            if start <= d <= end:
                for k in (
                    "issued",
                    "redeemed",
                    "expired",
                    "adjusted",
                    "transactions",
                    "purchases",
                    "salesFen",
                ):
                    out[k] = out.get(k, 0) + v[k]
                for part in ("issuedByKind", "redeemedByKind"):
                    for kind, n in v[part].items():
                        out[part][kind] = out[part].get(kind, 0) + n
        for k in ("issued", "redeemed", "expired", "adjusted", "transactions", "purchases", "salesFen"):
            out.setdefault(k, 0)
        return out

    months = await activity(api, brand.hq, brand.id, first, last, p="MONTH")
    assert [(m["start"], m["end"]) for m in months] == [
        ("2026-02-01", "2026-02-28"),
        ("2026-03-01", "2026-03-31"),
        ("2026-04-01", "2026-04-30"),
    ]
    assert shown(months[1]) == total(months, date(2026, 3, 1), date(2026, 3, 31))
    assert shown(months[2]) == total(months, date(2026, 4, 1), date(2026, 4, 2))
    weeks = await activity(api, brand.hq, brand.id, date(2026, 3, 1), date(2026, 3, 8), p="WEEK")
    assert [w["start"] for w in weeks] == ["2026-02-23", "2026-03-02"]  # ISO weeks start on Monday
    assert shown(weeks[0]) == total(weeks, date(2026, 3, 1), date(2026, 3, 1))
    assert shown(weeks[1]) == total(weeks, date(2026, 3, 2), date(2026, 3, 8))
    by_store = await activity(api, brand.hq, brand.id, date(2026, 3, 1), date(2026, 3, 31), p="MONTH", s=True)
    assert {r["store"]["id"] if r["store"] else None for r in by_store} == {
        brand.store_id,
        brand.store2_id,
        None,
    }
    for field in ("issued", "redeemed", "expired", "adjusted", "transactions", "purchases", "salesFen"):
        assert sum(int(r[field]) for r in by_store) == int(months[1][field]), field
    store1 = next(r for r in by_store if r["store"] and r["store"]["id"] == brand.store_id)
    assert int(store1["salesFen"]) == 12_345 + 900 and int(store1["redeemed"]) == 30

    # Liability: what the accounts hold, at 30 fen per 100 points, by store of issue.
    liability = (
        await api.data(
            f"query($b: ID!) {{ reports(brandId: $b) {{ {LIABILITY} }} }}", {"b": brand.id}, brand.hq
        )
    )["reports"]["liability"]
    held = sum(a.balance for a in await Account.filter(brand_id=brand_id, asset="points", kind="member"))
    assert int(liability["points"]["available"]) == held == 123 + 50 - 30 + 4 + 5 - 5 + 40 + 9 - 1
    assert int(liability["points"]["valueFen"]) == held * 30 // 100
    assert sum(int(s["available"]) for s in liability["byStore"]) == held
    stores = {(s["store"] or {}).get("id"): int(s["available"]) for s in liability["byStore"]}
    # No store issued the adjustment's 7, the top-up's 40 and the 10 transferred (a transfer's lots are
    # its own); the -3 and the transfer drew m2's oldest lot, the purchase at store 2.
    assert stores[None] == 7 + 40 + 10
    assert stores[brand.store2_id] == 50 - 3 - 10 - 1 and stores[brand.store_id] == 123 - 30 + 9
    assert {"asset": "points", "assetCode": "", "accountKind": "member", "balance": held} in liability[
        "assets"
    ]
    assert (await world.audit(brand))["violations"] == []


async def test_folding_keeps_every_figure_and_the_audit_catches_a_lost_delta(world: World) -> None:
    m, _, _ = await world.enroll()
    for fen in (1_000, 2_000, 3_000):
        assert (await world.earn(m, fen, key()))["userErrors"] == []
    today = datetime.now(ZoneInfo("Asia/Shanghai")).date()
    before = await activity(world.api, world.a.hq, world.a.id, today - timedelta(1), today)
    await report_rollup.fold_all(chunk=2)  # several chunks
    assert await report_rollup.pending_deltas() == 0
    after = await activity(world.api, world.a.hq, world.a.id, today - timedelta(1), today)
    assert after == before and int(after[-1]["salesFen"]) >= 6_000
    assert (await world.audit())["violations"] == []
    # A delta lost (or counted twice) shows in the audit.
    from tests.helpers import tamper

    await tamper(
        f"UPDATE report_day SET credit = credit + 1 WHERE brand_id = {pk(world.a.id)} AND account_kind = 'member'"
    )
    found = (await world.audit())["violations"]
    assert [v["check"] for v in found] == ["REPORT_ROLLUP_MISMATCH"]
    await tamper(
        f"UPDATE report_day SET credit = credit - 1 WHERE brand_id = {pk(world.a.id)} AND account_kind = 'member'"
    )
    assert (await world.audit())["violations"] == []


async def test_bad_ranges_and_other_brands_are_refused(world: World) -> None:
    query = "query($b: ID!, $f: Date!, $t: Date!) { reports(brandId: $b) { activity(from: $f, to: $t) { start } } }"
    for f, t, message in (("2026-03-02", "2026-03-01", "before"), ("2020-01-01", "2026-01-01", "at most")):
        body = await world.api.gql(query, {"b": world.a.id, "f": f, "t": t}, world.a.hq)
        assert (
            body["errors"][0]["extensions"]["code"] == "INVALID_INPUT"
            and message in body["errors"][0]["message"]
        )
    body = await world.api.gql(query, {"b": world.b.id, "f": "2026-03-01", "t": "2026-03-01"}, world.a.hq)
    assert body["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    assert await Brand.filter(id=pk(world.b.id)).exists()


async def test_a_replayed_or_refused_write_adds_nothing_to_the_reports(world: World) -> None:
    m, _, _ = await world.enroll()
    today = datetime.now(ZoneInfo("Asia/Shanghai")).date()

    async def totals() -> tuple[int, int, int]:
        rows = await activity(world.api, world.a.hq, world.a.id, today - timedelta(1), today)
        return tuple(sum(int(r[f]) for r in rows) for f in ("transactions", "purchases", "salesFen"))  # type: ignore[return-value]

    before = await totals()
    k = key("once")
    first = await world.earn(m, 2_500, k)
    assert first["userErrors"] == []
    after = await totals()
    assert after == (before[0] + 1, before[1] + 1, before[2] + 2_500)
    again = await world.earn(m, 2_500, k)  # the retry answers the first result, writes nothing
    assert again["userErrors"] == [] and again["transaction"] == first["transaction"]
    other = await world.earn(m, 9_999, k)  # another request under the same key is refused
    assert other["userErrors"] == [{"code": "IDEMPOTENCY_CONFLICT", "field": "idempotencyKey"}]
    short = await world.redeem(m, 1_000_000, key())  # not enough points: nothing written
    assert short["userErrors"][0]["code"] == "INSUFFICIENT_POINTS"
    assert await totals() == after
    assert (await world.audit())["violations"] == []
