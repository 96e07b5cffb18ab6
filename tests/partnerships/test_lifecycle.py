"""Partnership lifecycle: proposal and acceptance by the two HQs only, versions, suspension, end."""

from __future__ import annotations

import pytest

from hub.models import Partnership, PartnershipTerms
from tests.helpers import Api, Brand, World, make_brand, make_world
from tests.partnerships.support import PARTNERSHIP, active, key, propose, respond, wash_terms


@pytest.fixture(scope="module")
async def world(api: Api) -> World:
    return await make_world(api)


@pytest.fixture(scope="module")
async def third(world: World) -> Brand:
    return await make_brand(world.api, world.platform, "Salon")


async def test_a_proposal_is_answered_by_the_other_hq_only(world: World, third: Brand) -> None:
    proposed = await propose(world, world.a, world.b)
    pid = proposed["partnership"]["id"]
    assert proposed["partnership"]["status"] == "PROPOSED" and proposed["partnership"]["terms"] is None
    assert proposed["terms"]["acceptedByPointsBrand"] and not proposed["terms"]["acceptedByOfferBrand"]
    # The proposer cannot accept its own proposal; a third brand does not even find it.
    own = await respond(world, world.a, pid, 1)
    assert own["userErrors"] == [{"code": "INVALID_STATE", "field": "version"}]
    stranger = await respond(world, third, pid, 1)
    assert stranger["userErrors"] == [{"code": "NOT_FOUND", "field": "partnershipId"}]
    query = "query($id: ID!) { node(id: $id) { ... on Partnership { status } } }"
    assert (await world.api.data(query, {"id": pid}, third.hq))["node"] is None
    assert (await world.api.data(query, {"id": pid}, third.store))["node"] is None
    # A store of either brand reads it.
    assert (await world.api.data(query, {"id": pid}, world.b.store))["node"] == {"status": "PROPOSED"}

    accepted = await respond(world, world.b, pid, 1)
    assert accepted["userErrors"] == [] and accepted["partnership"]["status"] == "ACTIVE"
    assert accepted["partnership"]["currentVersion"] == 1
    assert accepted["partnership"]["terms"]["offers"][0]["pointsPrice"] == 1_500
    # Answering again returns the same; declining now is refused.
    assert (await respond(world, world.b, pid, 1))["partnership"] == accepted["partnership"]
    late = await respond(world, world.b, pid, 1, accept=False)
    assert late["userErrors"] == [{"code": "INVALID_STATE", "field": "version"}]

    listed = await world.api.data("{ partnerships(first: 100) { edges { node { id } } } }", token=third.hq)
    assert pid not in [e["node"]["id"] for e in listed["partnerships"]["edges"]]
    listed = await world.api.data("{ partnerships(first: 100) { edges { node { id } } } }", token=world.b.hq)
    assert pid in [e["node"]["id"] for e in listed["partnerships"]["edges"]]


async def test_the_offer_brand_may_propose_and_a_decline_is_final(world: World, third: Brand) -> None:
    proposed = await propose(world, world.a, third, proposer=third)
    pid = proposed["partnership"]["id"]
    assert proposed["terms"]["acceptedByOfferBrand"] and not proposed["terms"]["acceptedByPointsBrand"]
    declined = await respond(world, world.a, pid, 1, accept=False)
    assert declined["partnership"]["status"] == "DECLINED" and declined["terms"]["status"] == "DECLINED"
    again = await respond(world, world.a, pid, 1)
    assert again["userErrors"] == [{"code": "INVALID_STATE", "field": "version"}]


async def test_bad_proposals_write_nothing(world: World, third: Brand) -> None:
    before = (await Partnership.all().count(), await PartnershipTerms.all().count())
    good = {"name": "x", "pointsBrandId": world.a.id, "offerBrandId": world.b.id, "terms": wash_terms()}
    offer = good["terms"]["offers"][0]
    cases = [
        (
            {"pointsBrandId": third.id},
            "INVALID_INPUT",
            "pointsBrandId",
        ),  # not the caller's brand on either side
        ({"offerBrandId": world.a.id}, "INVALID_INPUT", "offerBrandId"),
        ({"offerBrandId": "QnJhbmQ6OTk5OTk5OQ=="}, "NOT_FOUND", "offerBrandId"),  # Brand:9999999
        ({"name": " "}, "INVALID_INPUT", "name"),
        ({"terms": wash_terms(offers=[])}, "INVALID_INPUT", "offers"),
        (
            {"terms": wash_terms(offers=[{**offer, "pointsPrice": 0}])},
            "INVALID_INPUT",
            "offers.0.pointsPrice",
        ),
        (
            {"terms": wash_terms(offers=[{**offer, "settlementFen": -1}])},
            "INVALID_INPUT",
            "offers.0.settlementFen",
        ),
        ({"terms": wash_terms(offers=[{**offer, "code": "Bad Code"}])}, "INVALID_INPUT", "offers.0.code"),
        ({"terms": wash_terms(offers=[offer, offer])}, "INVALID_INPUT", "offers"),
        (
            {"terms": wash_terms(offers=[{**offer, "kind": "COUPON"}])},
            "INVALID_INPUT",
            "offers.0.couponTemplateId",
        ),
        ({"terms": wash_terms(storeIds=[world.a.store_id])}, "NOT_FOUND", "storeIds"),
        ({"terms": wash_terms(limitPerDay=0)}, "INVALID_INPUT", "limitPerDay"),
        ({"terms": wash_terms(budgetFen=-5)}, "INVALID_INPUT", "budgetFen"),
        (
            {
                "terms": wash_terms(
                    validFrom="2030-01-02T00:00:00+08:00", validUntil="2030-01-01T00:00:00+08:00"
                )
            },
            "INVALID_INPUT",
            "validUntil",
        ),
        ({"terms": wash_terms(validFrom="2030-01-02T00:00:00")}, "INVALID_INPUT", "validFrom"),
    ]
    for change, code, field in cases:
        out = await world.api.mutate("proposePartnership", {**good, **change}, world.a.hq, PARTNERSHIP)
        assert out["userErrors"] == [{"code": code, "field": field}], change
    # Only HQ proposes.
    refused = await world.api.mutate("proposePartnership", good, world.a.store, PARTNERSHIP)
    assert refused["userErrors"] == [{"code": "PERMISSION_DENIED", "field": None}]
    assert (await Partnership.all().count(), await PartnershipTerms.all().count()) == before


async def test_new_terms_come_into_force_when_both_accept(world: World) -> None:
    p = await active(world, world.a, world.b)
    pid = p["id"]
    new = wash_terms(offers=[{**wash_terms()["offers"][0], "pointsPrice": 1_200}], limitPerDay=2)
    out = await world.api.mutate(
        "proposePartnershipTerms", {"partnershipId": pid, "terms": new}, world.b.hq, PARTNERSHIP
    )
    assert out["userErrors"] == [] and out["terms"]["version"] == 2 and out["terms"]["status"] == "PROPOSED"
    # Version 1 stays in force until A accepts.
    assert out["partnership"]["currentVersion"] == 1
    accepted = await respond(world, world.a, pid, 2)
    assert accepted["partnership"]["currentVersion"] == 2
    assert accepted["partnership"]["terms"]["offers"][0]["pointsPrice"] == 1_200
    versions = await world.api.data(
        "query($id: ID!) { node(id: $id) { ... on Partnership { versions { version status } } } }",
        {"id": pid},
        world.a.hq,
    )
    assert versions["node"]["versions"] == [
        {"version": 1, "status": "SUPERSEDED"},
        {"version": 2, "status": "IN_FORCE"},
    ]


async def test_suspend_resume_and_end(world: World) -> None:
    p = await active(world, world.a, world.b)
    fields = "partnership { status }"

    async def move(by: Brand, status: str) -> dict:
        return await world.api.mutate(
            "setPartnershipStatus", {"partnershipId": p["id"], "status": status}, by.hq, fields
        )

    assert (await move(world.a, "SUSPENDED"))["partnership"] == {"status": "SUSPENDED"}
    assert (await move(world.b, "ACTIVE"))["partnership"] == {"status": "ACTIVE"}
    assert (await move(world.b, "ENDED"))["partnership"] == {"status": "ENDED"}
    assert (await move(world.a, "ACTIVE"))["userErrors"] == [{"code": "INVALID_STATE", "field": "status"}]
    assert (await move(world.a, "PROPOSED"))["userErrors"] == [{"code": "INVALID_INPUT", "field": "status"}]
    new = {"partnershipId": p["id"], "terms": wash_terms()}
    out = await world.api.mutate("proposePartnershipTerms", new, world.a.hq, PARTNERSHIP)
    assert out["userErrors"] == [{"code": "INVALID_STATE", "field": "partnershipId"}]


async def test_both_directions_are_independent(world: World) -> None:
    there = await active(world, world.a, world.b)
    back = await active(world, world.b, world.a, limitPerDay=1)
    assert there["id"] != back["id"]
    assert there["terms"]["offers"][0]["id"] != back["terms"]["offers"][0]["id"]
    assert key() != key()
