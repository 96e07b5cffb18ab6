"""/metrics: Prometheus text with request, ledger, relay and subscription metrics, for allowed readers;
summed over workers in multi-process mode."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from starlette.applications import Starlette

from hub import metrics
from hub.settings import Settings
from tests import conftest
from tests.api.support import client, served, variant_app
from tests.helpers import BALANCE_SUBSCRIPTION, Api, World, WsClient, make_world
from tests.processes import live_hubs


@pytest.fixture(scope="module")
async def world(api: Api) -> World:
    return await make_world(api)


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


async def scrape(c: httpx.AsyncClient) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = await c.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return samples(response.text)


def value(scraped: dict, name: str, **labels: str) -> float:
    return scraped.get((name, tuple(sorted(labels.items()))), 0.0)


EARN = "mutation Earn($i: RecordPurchaseInput!) { recordPurchase(input: $i) { balance userErrors { code } } }"


async def test_requests_ledger_writes_and_relay_are_counted(api: Api, world: World) -> None:
    membership, _, _ = await world.enroll()
    before = await scrape(api.client)
    request = {"i": {"membershipId": membership, "amountFen": 700, "idempotencyKey": "metrics-1"}}
    await api.data(EARN, request, world.a.store)
    await api.data(EARN, request, world.a.store)  # a replay: no second ledger write
    await api.gql("query Broken { nope }")
    await api.gql('query Missing { node(id: "bm9wZQ==") { id } }', token=world.a.hq)
    deadline = asyncio.get_running_loop().time() + 5
    while True:
        after = await scrape(api.client)
        if value(after, "hub_relay_published_total") > value(before, "hub_relay_published_total"):
            break
        assert asyncio.get_running_loop().time() < deadline, "the relay never published"
        await asyncio.sleep(0.05)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("hub_graphql_requests_total", operation="Earn", type="mutation", outcome="ok") == 2
    assert delta("hub_graphql_request_duration_seconds_count", operation="Earn", type="mutation") == 2
    assert delta("hub_graphql_requests_total", operation="Broken", type="query", outcome="rejected") == 1
    assert delta("hub_graphql_requests_total", operation="Missing", type="query", outcome="error") == 1
    assert delta("hub_ledger_writes_total", kind="earn") == 1
    assert delta("hub_ledger_batch_size_count") == 1
    assert delta("hub_relay_published_total") >= 1
    assert delta("hub_relay_lag_seconds_count") >= 1
    assert delta("hub_http_responses_total", status="200") >= 4


async def test_open_subscriptions_are_a_gauge(app: Starlette, api: Api, world: World) -> None:
    membership, _, token = await world.enroll()
    async with served(app) as port:
        base = value(await scrape(api.client), "hub_subscriptions_open")
        ws = await WsClient.connect(f"ws://127.0.0.1:{port}/graphql", token)
        try:
            await ws.subscribe(BALANCE_SUBSCRIPTION, {"m": membership, "a": 0})
            await world.earn(membership, 100, "gauge-1")
            assert (await ws.next())["type"] == "next"
            assert value(await scrape(api.client), "hub_subscriptions_open") == base + 1
            assert value(await scrape(api.client), "hub_websockets_open") >= 1
        finally:
            await ws.close()
        for _ in range(100):
            if value(await scrape(api.client), "hub_subscriptions_open") == base:
                break
            await asyncio.sleep(0.02)
        assert value(await scrape(api.client), "hub_subscriptions_open") == base


async def test_metrics_are_for_loopback_or_the_token_holder(settings: Settings) -> None:
    open_app = variant_app(settings)
    async with client(open_app, client_ip="10.0.0.7") as remote:
        assert (await remote.get("/metrics")).status_code == 403
    async with client(open_app, client_ip="::1") as local:
        assert (await local.get("/metrics")).status_code == 200
    guarded = variant_app(settings, metrics_token="s3cret-metrics")
    async with client(guarded, client_ip="127.0.0.1") as local:
        assert (await local.get("/metrics")).status_code == 403
        wrong = await local.get("/metrics", headers={"authorization": "Bearer nope"})
        assert wrong.status_code == 403
        right = await local.get("/metrics", headers={"authorization": "Bearer s3cret-metrics"})
        assert right.status_code == 200 and "hub_graphql_requests_total" in right.text


def test_client_chosen_operation_names_cannot_grow_the_registry_without_bound() -> None:
    assert metrics.operation_label(None) == "anonymous"
    assert metrics.operation_label("has space") == "other"
    assert metrics.operation_label("x" * 65) == "other"
    labels = {metrics.operation_label(f"Generated{i}") for i in range(1_000)}
    assert "other" in labels and len(labels) <= 201


@pytest.mark.server
@pytest.mark.skipif(
    conftest.BACKEND != "postgres", reason="--workers needs Redis: the PostgreSQL run covers it"
)
async def test_several_workers_report_their_sum() -> None:
    async with live_hubs(1, args=("--workers", "2")) as (hubs, _env):
        url = hubs[0].url
        for _ in range(30):  # a fresh connection each, so both workers take some
            async with httpx.AsyncClient() as c:
                await c.post(url + "/graphql", json={"query": "query Probe { __typename }"})
        for _ in range(6):  # whichever worker answers, it answers for both
            async with httpx.AsyncClient() as c:
                scraped = samples((await c.get(url + "/metrics")).text)
            assert (
                value(scraped, "hub_graphql_requests_total", operation="Probe", type="query", outcome="ok")
                == 30
            )
        log = hubs[0].log.read_text()
    assert json.loads(log.splitlines()[-1])["level"] in ("INFO", "WARNING")  # JSON lines
