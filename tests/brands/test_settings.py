"""Brand settings: the brand's time zone and point value, set at creation or later by HQ."""

from __future__ import annotations

from tests.helpers import Api, make_brand, platform_key

SETTINGS = "brand { timezone pointValue { points fen } }"


async def test_defaults_then_hq_changes_them_and_bad_values_write_nothing(api: Api) -> None:
    brand = await make_brand(api, await platform_key(), "Settings")
    query = "query($id: ID!) { node(id: $id) { ... on Brand { timezone pointValue { points fen } } } }"
    assert (await api.data(query, {"id": brand.id}, brand.hq))["node"] == {
        "timezone": "Asia/Shanghai",
        "pointValue": {"points": 100, "fen": 100},
    }

    changed = await api.mutate(
        "updateBrandSettings",
        {"brandId": brand.id, "timezone": "Europe/Berlin", "pointValueFen": 50},
        brand.hq,
        SETTINGS,
    )
    assert changed["userErrors"] == []
    assert changed["brand"] == {"timezone": "Europe/Berlin", "pointValue": {"points": 100, "fen": 50}}

    for bad, field in (
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"timezone": "../etc/passwd"}, "timezone"),
        ({"pointValuePoints": 0}, "pointValuePoints"),
        ({"pointValueFen": 1_000_001}, "pointValueFen"),
    ):
        out = await api.mutate("updateBrandSettings", {"brandId": brand.id, **bad}, brand.hq, SETTINGS)
        assert [(e["code"], e["field"]) for e in out["userErrors"]] == [("INVALID_INPUT", field)], bad
    after = (await api.data(query, {"id": brand.id}, brand.hq))["node"]
    assert after == {"timezone": "Europe/Berlin", "pointValue": {"points": 100, "fen": 50}}


async def test_create_brand_takes_the_settings(api: Api) -> None:
    platform = await platform_key()
    out = await api.mutate(
        "createBrand",
        {"name": "Tz", "timezone": "America/New_York", "pointValuePoints": 10, "pointValueFen": 1},
        platform,
        SETTINGS,
    )
    assert out["brand"] == {"timezone": "America/New_York", "pointValue": {"points": 10, "fen": 1}}
    refused = await api.mutate("createBrand", {"name": "Tz", "timezone": "Nowhere"}, platform, SETTINGS)
    assert [e["code"] for e in refused["userErrors"]] == ["INVALID_INPUT"] and refused["brand"] is None
