"""Small clients for the tests: GraphQL over HTTP, a graphql-transport-ws client, test worlds."""

from __future__ import annotations

import asyncio
import itertools
import json
import random
from dataclasses import dataclass
from typing import Any

import httpx

from hub.auth import Principal
from hub.domain import Role
from hub.resolvers.keys import create_api_key

_phones = itertools.count(random.randrange(10_000_000, 90_000_000))


def new_phone() -> str:
    """A valid mainland mobile number that no other test uses."""
    return f"139{next(_phones):08d}"


class CapturingSender:
    """The login-code sender of the test app: keeps every code it was asked to send."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []  # (phone as E.164 digits, code)
        self._arrived = asyncio.Event()

    async def send(self, phone: str, code: str, expires_at: Any) -> None:
        self.sent.append((phone, code))
        self._arrived.set()

    def codes_for(self, phone: str) -> list[str]:
        digits = phone.lstrip("+")
        return [code for to, code in self.sent if to == digits or to == "86" + digits]

    async def code_for(self, phone: str, count: int = 1, timeout: float = 5.0) -> str:
        """The latest code sent to ``phone``, once at least ``count`` were sent to it."""
        async with asyncio.timeout(timeout):
            while True:
                self._arrived.clear()
                if len(self.codes_for(phone)) >= count:
                    break
                await self._arrived.wait()
        return self.codes_for(phone)[-1]


class Api:
    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client

    async def raw(
        self, query: str, variables: dict[str, Any] | None = None, token: str | None = None
    ) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return await self.client.post(
            "/graphql", json={"query": query, "variables": variables or {}}, headers=headers
        )

    async def gql(
        self, query: str, variables: dict[str, Any] | None = None, token: str | None = None
    ) -> dict[str, Any]:
        response = await self.raw(query, variables, token)
        assert response.status_code == 200, response.text
        return response.json()

    async def data(
        self, query: str, variables: dict[str, Any] | None = None, token: str | None = None
    ) -> dict[str, Any]:
        body = await self.gql(query, variables, token)
        assert "errors" not in body, body
        return body["data"]

    async def mutate(self, name: str, input: dict[str, Any], token: str, fields: str) -> dict[str, Any]:
        """Run ``name(input:)`` and return its payload (with userErrors)."""
        input_type = name[0].upper() + name[1:] + "Input"
        query = (
            f"mutation($i: {input_type}!) {{ {name}(input: $i) {{ userErrors {{ code field }} {fields} }} }}"
        )
        return (await self.data(query, {"i": input}, token))[name]


PURCHASE = "points balance transaction { id kind }"


@dataclass
class Brand:
    id: str
    hq: str
    store_id: str
    store: str
    store2_id: str
    store2: str


@dataclass
class World:
    api: Api
    platform: str
    a: Brand
    b: Brand

    async def enroll(self, brand: Brand | None = None) -> tuple[str, str, str]:
        """Enrol a new phone at the brand's first store: (membership id, phone, member token)."""
        brand = brand or self.a
        phone = new_phone()
        out = await self.api.mutate(
            "enrollMember", {"phone": phone}, brand.store, "membership { id } created"
        )
        assert out["userErrors"] == [] and out["created"], out
        membership = out["membership"]["id"]
        token = await self.api.mutate("issueMemberToken", {"membershipId": membership}, brand.hq, "token")
        return membership, phone, token["token"]

    async def earn(self, membership: str, amount_fen: int, key: str, brand: Brand | None = None) -> dict:
        return await self.api.mutate(
            "recordPurchase",
            {"membershipId": membership, "amountFen": amount_fen, "idempotencyKey": key},
            (brand or self.a).store,
            PURCHASE,
        )

    async def redeem(self, membership: str, points: int, key: str, token: str | None = None) -> dict:
        return await self.api.mutate(
            "redeemPoints",
            {"membershipId": membership, "points": points, "reason": "test", "idempotencyKey": key},
            token or self.a.store,
            PURCHASE,
        )

    async def balance(self, membership: str, token: str | None = None) -> int:
        query = "query($id: ID!) { node(id: $id) { ... on Membership { points { available } } } }"
        data = await self.api.data(query, {"id": membership}, token or self.a.hq)
        return int(data["node"]["points"]["available"])

    async def audit(self, brand: Brand | None = None) -> dict:
        query = "{ ledgerAudit { ok postings violations { check subject detail } } }"
        return (await self.api.data(query, token=(brand or self.a).hq))["ledgerAudit"]


async def platform_key() -> str:
    return (await create_api_key(Principal(Role.PLATFORM), Role.PLATFORM, label="test"))[1]


async def make_brand(api: Api, platform: str, name: str, unit_fen: int = 100) -> Brand:
    created = await api.mutate(
        "createBrand", {"name": name, "earnPoints": 1, "earnUnitFen": unit_fen}, platform, "brand { id }"
    )
    brand_id = created["brand"]["id"]
    hq = await api.mutate("createApiKey", {"role": "BRAND", "brandId": brand_id}, platform, "secret")
    stores = []
    for code in ("S1", "S2"):
        store = await api.mutate(
            "createStore",
            {"brandId": brand_id, "name": f"{name} {code}", "code": code},
            hq["secret"],
            "store { id }",
        )
        key = await api.mutate(
            "createApiKey", {"role": "STORE", "storeId": store["store"]["id"]}, hq["secret"], "secret"
        )
        stores.append((store["store"]["id"], key["secret"]))
    return Brand(brand_id, hq["secret"], stores[0][0], stores[0][1], stores[1][0], stores[1][1])


async def make_world(api: Api, platform: str | None = None) -> World:
    platform = platform or await platform_key()
    a, b = await asyncio.gather(
        make_brand(api, platform, "Mart"), make_brand(api, platform, "Wash", unit_fen=1000)
    )
    return World(api, platform, a, b)


class WsClient:
    """A minimal graphql-transport-ws client over a real socket."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn

    @classmethod
    async def connect(cls, url: str, token: str | None) -> WsClient:
        import websockets

        conn = await websockets.connect(url, subprotocols=["graphql-transport-ws"])  # type: ignore[list-item]
        payload = {"Authorization": f"Bearer {token}"} if token else {}
        await conn.send(json.dumps({"type": "connection_init", "payload": payload}))
        ack = json.loads(await asyncio.wait_for(conn.recv(), 5))
        assert ack["type"] == "connection_ack", ack
        return cls(conn)

    async def subscribe(self, query: str, variables: dict[str, Any], op_id: str = "1") -> None:
        await self.conn.send(
            json.dumps(
                {"id": op_id, "type": "subscribe", "payload": {"query": query, "variables": variables}}
            )
        )

    async def next(self, timeout: float = 5.0) -> dict[str, Any]:
        while True:
            message = json.loads(await asyncio.wait_for(self.conn.recv(), timeout))
            if message["type"] == "ping":
                await self.conn.send(json.dumps({"type": "pong"}))
                continue
            return message

    async def close(self) -> None:
        await self.conn.close()


BALANCE_SUBSCRIPTION = """subscription($m: ID, $a: BigInt) {
  balanceChanged(membershipId: $m, afterSequence: $a) {
    membershipId sequence balance delta transaction { transactionId kind storeId }
  }
}"""


def fail_after_the_writes(monkeypatch: Any) -> None:
    """Make every ledger batch raise after it wrote everything (postings, balances, lots, outbox),
    before its commit, whichever way it writes (one statement on PostgreSQL, or one per table)."""
    from hub.ledger import engine

    for name in ("_write_plan", "_write_in_one_statement"):
        original = getattr(engine, name)

        async def broken(*args: Any, _original: Any = original, **kwargs: Any) -> Any:
            await _original(*args, **kwargs)
            raise RuntimeError("injected after the batch's writes, before its commit")

        monkeypatch.setattr(engine, name, broken)


async def tamper(sql: str) -> None:
    """Change ledger rows behind the engine's back, as an attacker or a bug would (audit tests).

    On PostgreSQL the database's own guards refuse that (the ledger_core migration), so they are off for this one
    transaction: triggers through ``session_replication_role``, and the no-overdraft check is dropped
    and added back ``NOT VALID`` (rows written later are checked again).
    """
    from tortoise import connections
    from tortoise.transactions import in_transaction

    if connections.get("default").capabilities.dialect != "postgres":
        await connections.get("default").execute_script(sql)
        return
    async with in_transaction() as tx:
        await tx.execute_script(
            "SET LOCAL session_replication_role = replica;"
            " ALTER TABLE account DROP CONSTRAINT account_no_overdraft"
        )
        await tx.execute_script(sql)
        await tx.execute_script(
            "ALTER TABLE account ADD CONSTRAINT account_no_overdraft"
            " CHECK (allow_negative OR balance >= 0) NOT VALID"
        )


def pk(global_id: str) -> int:
    """The database id inside a Relay global id."""
    from strawberry.relay import GlobalID

    return int(GlobalID.from_id(global_id).node_id)


async def subscribe_first(
    app: Any, schema: Any, query: str, variables: dict[str, Any], token: str | None, timeout: float = 5.0
) -> dict[str, Any]:
    """Run a subscription in this process through the app's services; its first result as JSON-ish.

    The whole path a websocket takes after ``connection_init``: the context, the field's policy, the
    resolver and the stream (tests/live runs the same over real sockets).
    """
    from hub.schema.context import HubContext

    services = app.state.services
    context = HubContext(
        services=services, principal=await services.authenticator.principal_for(token), credential=token
    )
    result = await schema.subscribe(query, variable_values=variables, context_value=context)
    if not hasattr(result, "__anext__"):
        return {"data": result.data, "errors": [e.formatted for e in result.errors or []]}
    try:
        first = await asyncio.wait_for(anext(result), timeout)
    finally:
        await result.aclose()
    return {"data": first.data, "errors": [e.formatted for e in first.errors or []]}


def outcome(body: dict[str, Any]) -> str:
    """A query's answer in one word: the first error's code, NULL when every field is null, or OK."""
    if body.get("errors"):
        return str(body["errors"][0].get("extensions", {}).get("code", "ERROR"))
    return "OK" if any(v is not None for v in (body.get("data") or {}).values()) else "NULL"
