"""The README's client recipes, run: relay-compiler and GraphQL Code Generator over schema.graphql, and
Apollo Client and Relay's runtime with graphql-ws against a real hub process (examples/clients).

Needs Node 20+ and npm; `npm ci` runs once per package-lock.json (its hash is stamped into
node_modules). Without Node the tests skip, except under CI=true, where they fail."""

from __future__ import annotations

import asyncio
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.helpers import Api, make_world
from tests.processes import create_platform_key, live_hubs

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "clients"


@pytest.fixture(scope="module")
def node_modules() -> Iterator[Path]:
    npm, node = shutil.which("npm"), shutil.which("node")
    if not (npm and node):
        if os.environ.get("CI") == "true":
            pytest.fail("the client recipes need Node 20+ and npm under CI")
        pytest.skip("Node and npm are not installed")
    # The example folder is shared: a second test run (the other backend, in parallel) waits here rather
    # than install or compile into it at the same time.
    with (EXAMPLE / ".test-lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        digest = hashlib.sha256((EXAMPLE / "package-lock.json").read_bytes()).hexdigest()
        stamp = EXAMPLE / "node_modules" / ".hub-package-lock.sha256"
        if not (stamp.exists() and stamp.read_text() == digest):
            subprocess.run(
                [npm, "ci", "--no-audit", "--no-fund"],
                cwd=EXAMPLE,
                check=True,
                capture_output=True,
                timeout=600,
            )
            stamp.write_text(digest)
        yield EXAMPLE / "node_modules"


def _run(*command: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=EXAMPLE, capture_output=True, text=True, timeout=300)


def test_relay_compiler_accepts_the_schema_and_a_connection(node_modules: Path) -> None:
    """@connection needs PageInfo's four fields; @refetchable a Node type that node(id:) fetches."""
    done = _run(node_modules / ".bin" / "relay-compiler")
    assert done.returncode == 0, done.stdout + done.stderr
    generated = EXAMPLE / "src" / "__generated__" / "MemberHistory_membership.graphql.js"
    assert '"__MemberHistory_history_connection"' in generated.read_text()


def test_codegen_maps_every_custom_scalar(node_modules: Path) -> None:
    """strictScalars: a scalar without a mapping in codegen.yml fails the generation."""
    done = _run(node_modules / ".bin" / "graphql-codegen", "--config", "codegen.yml")
    assert done.returncode == 0, done.stdout + done.stderr
    types = (EXAMPLE / "__generated__" / "graphql.ts").read_text()
    for line in (
        "BigInt: { input: number; output: number; }",
        "DateTime: { input: string; output: string; }",
        "Date: { input: string; output: string; }",
        "JSON: { input: unknown; output: unknown; }",
    ):
        assert line in types


async def _node(script: str, env: dict[str, str]) -> dict:
    """Run an example script; the last line it prints, as JSON."""
    node = await asyncio.create_subprocess_exec(
        shutil.which("node") or "node",
        script,
        cwd=EXAMPLE,
        env={**os.environ, **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(node.communicate(), 120)
    assert node.returncode == 0, (out + err).decode()
    return dict(json.loads(out.decode().strip().splitlines()[-1]))


async def test_apollo_and_relay_page_cache_and_subscribe_against_a_hub(node_modules: Path) -> None:
    compiled = _run(node_modules / ".bin" / "relay-compiler")  # src/relay.mjs imports its artifacts
    assert compiled.returncode == 0, compiled.stdout + compiled.stderr
    async with live_hubs(1) as (hubs, env), httpx.AsyncClient(base_url=hubs[0].url) as http:
        world = await make_world(Api(http), create_platform_key(env))
        membership, _, member_token = await world.enroll()
        for n in range(3):
            await world.earn(membership, 1_000 * (n + 1), f"recipe-{n}")
        clients = {
            "HUB_HTTP_URL": hubs[0].url + "/graphql",
            "HUB_WS_URL": hubs[0].ws_url,
            "MEMBER_TOKEN": member_token,
            "STORE_KEY": world.a.store,
            "MEMBERSHIP_ID": membership,
        }

        seen = await _node("src/apollo.mjs", clients)
        assert seen["mergedSequences"] == [3, 2, 1]
        assert seen["mergedPageInfo"]["hasNextPage"] is False
        assert seen["mergedPageInfo"]["hasPreviousPage"] is False
        event = seen["event"]
        assert (event["membershipId"], event["sequence"], event["delta"], event["balance"]) == (
            membership,
            4,
            42,
            60 + 42,
        )
        assert event["transaction"]["kind"] == "EARN"

        seen = await _node("src/relay.mjs", clients)
        assert seen["connectionRecords"] >= 1
        assert seen["transactionRecordType"] == "LedgerTransaction"
        assert (seen["event"]["sequence"], seen["event"]["delta"]) == (5, 25)

        assert await world.balance(membership) == 102 + 25
        assert (await world.audit())["ok"]
