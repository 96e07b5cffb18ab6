"""The console and /me in real headless Chromium (Debian's ``chromium``, driven by Playwright).

One scenario as HQ staff and a member live it: HQ signs in, finds the member by phone and adjusts
points (with the confirmation step); the member's /me page, open in another browser context, and the
brand's live activity feed show the change without a reload. Every page is checked for console errors
and for requests leaving 127.0.0.1; the dashboard's screenshot is saved as a test artefact
(``HUB_TEST_ARTIFACTS``, default ``test-artifacts/``).

Runs on the PostgreSQL + Redis pass only (it is the slow one of the suite), against two hub processes:
the console talks to one and the member page and the feed to the other, so the change crosses Redis.
Without Chromium or Playwright the test is skipped, and under ``CI=true`` it fails.
"""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from tests import conftest
from tests.helpers import Api, World, make_world
from tests.processes import HubProcess, create_platform_key, live_hubs

pytestmark = [
    pytest.mark.server,
    pytest.mark.skipif(conftest.BACKEND != "postgres", reason="browser tests run on the PostgreSQL pass"),
]
CHROMIUM = os.environ.get("HUB_TEST_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(os.environ.get("HUB_TEST_ARTIFACTS", "test-artifacts"))
PHONE = {"width": 390, "height": 844}  # a phone's viewport
WAIT_MS = 10_000


def _missing(what: str) -> None:
    message = f"{what}: install it with `make browser` (apt-get install chromium; pip install playwright)"
    if conftest.IN_CI:
        pytest.fail(f"{message}; CI needs it", pytrace=False)
    pytest.skip(message)


def _read(path: Any) -> str:
    return Path(path).read_text()


def _keep(png: bytes, name: str) -> None:
    assert len(png) > 10_000  # a page, not a blank
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / name).write_bytes(png)


class Watch:
    """What the browser did that it should not: console errors, page errors, requests to other hosts."""

    def __init__(self) -> None:
        self.problems: list[str] = []

    def page(self, page: Any, name: str) -> Any:
        page.on("console", lambda m: m.type == "error" and self.problems.append(f"{name}: console {m.text}"))
        page.on("pageerror", lambda e: self.problems.append(f"{name}: page error {e}"))
        page.on("websocket", lambda ws: self._check(name, ws.url))
        return page

    def _check(self, name: str, url: str) -> bool:
        host = urlsplit(url).hostname
        if url.startswith(("data:", "blob:", "about:")) or host == "127.0.0.1":
            return True
        self.problems.append(f"{name}: request to {url}")
        return False

    async def context(self, browser: Any, name: str, **options: Any) -> Any:
        context = await browser.new_context(**options)

        async def only_local(route: Any) -> None:
            if self._check(name, route.request.url):
                await route.continue_()
            else:
                await route.abort()

        await context.route("**/*", only_local)
        return context


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Any]:
    if not shutil.which(CHROMIUM):
        _missing(f"no Chromium at {CHROMIUM}")
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        _missing("Playwright for Python is not installed")
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield browser
        finally:
            await browser.close()


@pytest.fixture(scope="module")
async def hubs() -> AsyncIterator[tuple[list[HubProcess], World]]:
    async with live_hubs(2) as (hubs, env):
        async with httpx.AsyncClient(base_url=hubs[0].url, timeout=30) as client:
            yield hubs, await make_world(Api(client), create_platform_key(env))


async def _sign_in(page: Any, hub: HubProcess, key: str, where: str = "") -> None:
    await page.goto(f"{hub.url}/console{where}")
    await page.fill("#key", key)
    await page.click("form button[type=submit]")
    await page.wait_for_selector("[data-testid=brand-name]", timeout=WAIT_MS)


async def _text_becomes(page: Any, selector: str, text: str) -> None:
    await page.wait_for_function(
        "([s, t]) => document.querySelector(s)?.textContent.trim() === t",
        arg=[selector, text],
        timeout=WAIT_MS,
    )


async def test_hq_adjusts_points_and_the_member_page_and_the_feed_follow_live(
    browser: Any, hubs: tuple[list[HubProcess], World]
) -> None:
    (console_hub, member_hub), world = hubs
    watch = Watch()
    async with httpx.AsyncClient(base_url=console_hub.url, timeout=30) as client:
        api_world = World(Api(client), world.platform, world.a, world.b)
        # Points earned from now on expire after 60 days: the member page lists them.
        policy = {"brandId": world.a.id, "kind": "DAYS", "count": 60, "reason": "browser test"}
        assert (await api_world.api.mutate("setExpiryPolicy", policy, world.a.hq, "policy { kind }"))[
            "userErrors"
        ] == []
        membership, phone, member_token = await api_world.enroll()
        assert (await api_world.earn(membership, 12_345, "browser-seed"))["userErrors"] == []
        start = await api_world.balance(membership)
        assert start == 123

        # HQ signs in and finds the member by phone.
        hq = await watch.context(browser, "console")
        page = watch.page(await hq.new_page(), "console")
        await page.goto(f"{console_hub.url}/console")
        await _sign_in(page, console_hub, world.a.hq, "#/members")
        await page.fill("#phone", phone)
        await page.click("form[role=search] button")
        await _text_becomes(page, "[data-testid=balance]", "123")

        # The member's own page, in another browser context, at phone width, on the other process.
        member = await watch.context(browser, "me", viewport=PHONE)
        me = watch.page(await member.new_page(), "me")
        await me.goto(f"{member_hub.url}/me#token={member_token}")
        await _text_becomes(me, "[data-testid=me-balance]", "123")
        assert "token" not in me.url  # the token left the address bar
        assert "123 points expire on" in (await me.text_content("[data-testid=expiring]") or "")

        # The brand's live feed, HQ in a third context.
        feed_context = await watch.context(browser, "activity")
        feed = watch.page(await feed_context.new_page(), "activity")
        await _sign_in(feed, member_hub, world.a.hq, "#/activity")
        # Both pages subscribe once they are shown: purchases until each has shown one are the sign
        # that their subscriptions are in place (a fixed sleep would be a guess).
        expected = start
        for i in range(30):
            assert (await api_world.earn(membership, 100, f"browser-warm-{i}"))["userErrors"] == []
            expected += 1
            rows = await feed.locator("table[data-testid=activity] tbody tr").count()
            shown = (await me.text_content("[data-testid=me-balance]") or "").strip()
            if rows and shown == str(expected):
                break
            await feed.wait_for_timeout(300)
        await _text_becomes(me, "[data-testid=me-balance]", str(expected))

        # The adjustment, with its confirmation step.
        await page.fill("#adjust-points", "250")
        await page.fill("#adjust-reason", "Compensation for a broken scanner")
        await page.click("text=Adjust…")
        dialog = page.get_by_role("alertdialog")
        await dialog.wait_for(timeout=WAIT_MS)
        assert "Add 250 points" in (await dialog.text_content() or "")
        assert await api_world.balance(membership) == expected  # nothing written before confirming
        await dialog.get_by_role("button", name="Confirm").click()
        expected += 250
        await page.get_by_role("status").wait_for(timeout=WAIT_MS)
        await _text_becomes(page, "[data-testid=balance]", f"{expected:,}")

        # Live on the member's page and in the feed, without a reload.
        await _text_becomes(me, "[data-testid=me-balance]", f"{expected:,}")
        first_row = feed.locator("table[data-testid=activity] tbody tr").first
        await first_row.filter(has_text="adjust").wait_for(timeout=WAIT_MS)
        assert "+250" in (await first_row.text_content() or "")
        assert await api_world.balance(membership) == expected
        assert (await api_world.audit())["ok"]

        # Every other page loads cleanly; the dashboard's screenshot is kept.
        for where in [
            "#/stores",
            "#/keys",
            "#/rules",
            "#/coupons",
            "#/gifts",
            "#/partnerships",
            "#/changes",
            "#/members",
        ]:
            await page.goto(f"{console_hub.url}/console{where}")
            await page.wait_for_selector("main section table, main section p.muted", timeout=WAIT_MS)
            await page.wait_for_load_state("networkidle")
        # HQ's member list masks phones (the key has no personal-data permission).
        masked = f"{phone[:3]}****{phone[-4:]}"
        await page.locator("table[data-testid=members]").get_by_text(masked).wait_for(timeout=WAIT_MS)
        await page.goto(f"{console_hub.url}/console#/dashboard")
        await page.wait_for_selector("[data-testid=chart-points] canvas", timeout=WAIT_MS)
        await page.wait_for_selector("[data-testid=chart-sales] canvas", timeout=WAIT_MS)
        tiles = await page.text_content("[data-testid=dashboard-tiles]") or ""
        assert "Points outstanding" in tiles and "Redemption rate" in tiles
        async with page.expect_download() as download:  # the CSV export, with the key in its header
            await page.get_by_role("button", name="liability").click()
        saved = await (await download.value).path()
        assert _read(saved).startswith("part,store_code,store_name,asset")
        await page.wait_for_load_state("networkidle")
        shot = await page.screenshot(full_page=True)
        _keep(shot, "console-dashboard.png")

        graphiql = watch.page(await hq.new_page(), "graphiql")
        await graphiql.goto(f"{console_hub.url}/graphql")
        await graphiql.wait_for_selector(".graphiql-editors", timeout=WAIT_MS)
        await graphiql.wait_for_load_state("networkidle")

        for context in (hq, member, feed_context):
            await context.close()
    assert watch.problems == []


async def test_the_console_fits_a_phone_and_refuses_a_wrong_key(
    browser: Any, hubs: tuple[list[HubProcess], World]
) -> None:
    (hub, _), world = hubs
    watch = Watch()
    context = await watch.context(browser, "phone", viewport=PHONE)
    page = watch.page(await context.new_page(), "phone")
    await page.goto(f"{hub.url}/console")
    await page.fill("#key", f"fh_{secrets.token_hex(6)}_wrong")
    await page.click("form button[type=submit]")
    alert = page.get_by_role("alert")
    await alert.wait_for(timeout=WAIT_MS)
    assert "UNAUTHENTICATED" in (await alert.text_content() or "")
    assert await page.evaluate("sessionStorage.length") == 0  # a refused key is not kept

    await _sign_in(page, hub, world.a.hq, "#/members")
    await page.wait_for_selector("table[data-testid=members], main p.muted", timeout=WAIT_MS)
    assert await page.is_visible(".menu-toggle")  # the menu folds away at phone width
    overflow = await page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0
    await page.click(".menu-toggle")
    await page.click("nav >> text=Stores")
    await page.wait_for_selector("table[data-testid=stores]", timeout=WAIT_MS)
    await context.close()
    assert watch.problems == []
