"""CSV exports over HTTP: what each report says, the member list streamed page by page, authorised
like the reports, phones as hub/privacy.py says, no formula in a cell."""

from __future__ import annotations

import csv
import io
import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from hub.http import exports
from tests.helpers import Api, World, make_brand, make_world, new_phone
from tests.reports.support import activity, key


@pytest.fixture(scope="module")
async def world(api: Api) -> World:
    return await make_world(api)


async def _csv(api: Api, path: str, token: str | None, **params: str) -> tuple[int, list[dict[str, str]]]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = await api.client.get(f"/reports/{path}.csv", params=params, headers=headers)
    if response.status_code != 200:
        return response.status_code, [response.json()["errors"][0]["extensions"]]
    assert response.headers["content-type"].startswith("text/csv")
    return 200, list(csv.DictReader(io.StringIO(response.text)))


async def test_the_member_list_streams_every_member_page_by_page(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    brand = await make_brand(world.api, world.platform, "Export")
    for _ in range(23):
        out = await world.api.mutate("enrollMember", {"phone": new_phone()}, brand.store, "membership { id }")
        assert out["userErrors"] == []
    monkeypatch.setattr(exports, "PAGE", 5)  # five pages and a bit
    status, rows = await _csv(world.api, "member-list", brand.hq, brandId=brand.id, orderBy="NEWEST")
    assert status == 200 and len(rows) == 23 and len({r["membership_id"] for r in rows}) == 23
    assert all(re.fullmatch(r"1\d\d\*\*\*\*\d{4}", r["phone"]) for r in rows)
    assert {r["join_store_code"] for r in rows} == {"S1"}
    _, gold = await _csv(world.api, "member-list", brand.hq, brandId=brand.id, tier="gold")
    assert gold == []


async def test_reports_as_csv_say_what_graphql_says(world: World) -> None:
    m, _, _ = await world.enroll()
    assert (await world.earn(m, 4_321, key()))["userErrors"] == []
    # A store whose name a spreadsheet would run as a formula.
    store = await world.api.mutate(
        "createStore",
        {"brandId": world.a.id, "name": '=HYPERLINK("x")', "code": key("F")},
        world.a.hq,
        "store { id }",
    )
    store_key = await world.api.mutate(
        "createApiKey", {"role": "STORE", "storeId": store["store"]["id"]}, world.a.hq, "secret"
    )
    out = await world.api.mutate(
        "recordPurchase",
        {"membershipId": m, "amountFen": 1_000, "idempotencyKey": key()},
        store_key["secret"],
        "points",
    )
    assert out["userErrors"] == []
    today = datetime.now(ZoneInfo("Asia/Shanghai")).date()
    first, last = (today - timedelta(1)).isoformat(), today.isoformat()
    status, rows = await _csv(
        world.api, "activity", world.a.hq, brandId=world.a.id, **{"from": first, "to": last}
    )
    shown = await activity(world.api, world.a.hq, world.a.id, today - timedelta(1), today)
    assert status == 200 and [r["start"] for r in rows] == [d["start"] for d in shown]
    for row, day in zip(rows, shown, strict=True):
        assert (int(row["issued"]), int(row["sales_fen"]), int(row["purchases"])) == (
            int(day["issued"]),
            int(day["salesFen"]),
            int(day["purchases"]),
        )
    _, by_store = await _csv(
        world.api, "activity", world.a.hq, brandId=world.a.id, byStore="true", period="MONTH",
        **{"from": first, "to": last},
    )  # fmt: skip
    assert '\'=HYPERLINK("x")' in {r["store_name"] for r in by_store}
    status, liability = await _csv(world.api, "liability", world.a.hq, brandId=world.a.id)
    assert status == 200 and liability[0]["part"] == "points" and int(liability[0]["available"]) > 0
    assert int(liability[0]["available"]) == sum(
        int(r["available"]) for r in liability if r["part"] == "store"
    )
    status, cohorts = await _csv(
        world.api, "cohorts", world.a.hq, brandId=world.a.id, **{"from": first, "to": last}
    )
    assert status == 200 and cohorts[0]["start"] == (today - timedelta(1)).replace(day=1).isoformat()
    assert sum(int(c["earned"]) for c in cohorts) == sum(int(c["open"]) + int(c["redeemed"]) for c in cohorts)
    status, members = await _csv(
        world.api, "members", world.platform, brandId=world.a.id, **{"from": first, "to": last}
    )
    assert status == 200 and members[-1]["tier"] == "(all)" and int(members[-1]["enrolled"]) >= 1


async def test_exports_are_authorised_like_the_reports_and_refuse_bad_parameters(world: World) -> None:
    a = world.a.id
    window = {"from": "2026-03-01", "to": "2026-03-31"}
    for token, params, status, code in (
        (None, {"brandId": a}, 401, "UNAUTHENTICATED"),
        ("fh_nope_nope", {"brandId": a}, 401, "UNAUTHENTICATED"),
        (world.a.store, {"brandId": a}, 403, "PERMISSION_DENIED"),
        (world.b.hq, {"brandId": a}, 404, "NOT_FOUND"),
        (world.a.hq, {}, 400, "INVALID_INPUT"),
        (world.a.hq, {"brandId": "nonsense"}, 400, "INVALID_ID"),
        (world.a.hq, {"brandId": a, "from": "2026-03-01"}, 400, "INVALID_INPUT"),
        (world.a.hq, {"brandId": a, "from": "March", "to": "2026-03-31"}, 400, "INVALID_INPUT"),
        (world.a.hq, {"brandId": a, **window, "period": "FORTNIGHT"}, 400, "INVALID_INPUT"),
        (world.a.hq, {"brandId": a, "from": "2026-03-31", "to": "2026-03-01"}, 400, "INVALID_INPUT"),
    ):
        status_, body = await _csv(world.api, "activity", token, **params)
        assert (status_, body[0]["code"]) == (status, code), (token, params)
    status_, body = await _csv(world.api, "nothing", world.a.hq, brandId=a)
    assert (status_, body[0]["code"]) == (404, "NOT_FOUND")
    status_, _ = await _csv(world.api, "activity", world.platform, brandId=a, **window)
    assert status_ == 200
