"""Brands and stores."""

from __future__ import annotations

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.exceptions import IntegrityError
from tortoise.queryset import QuerySet
from tortoise.transactions import in_transaction

from hub import policy
from hub.auth import Principal
from hub.errors import DomainError, ErrorCode, InvalidInput
from hub.ledger.accounts import create_brand_accounts
from hub.models import Brand, Store
from hub.resolvers import access, change_log, creations
from hub.resolvers import validation as v

MAX_UNIT_FEN = 1_000_000


def _rate(points: int, unit_fen: int) -> tuple[int, int]:
    if not 0 <= points <= 10_000:
        raise InvalidInput("Between 0 and 10000 points per unit.", "earnPoints")
    if not 1 <= unit_fen <= MAX_UNIT_FEN:
        raise InvalidInput(f"Between 1 and {MAX_UNIT_FEN} fen.", "earnUnitFen")
    # At most one point per fen (100 points per ¥1): the largest purchase then earns about 2·10^9
    # points, and the ledger caps one transaction below that anyway (hub.ledger.policy).
    if points > unit_fen:
        raise InvalidInput("At most one point per fen: earnPoints cannot exceed earnUnitFen.", "earnPoints")
    return points, unit_fen


async def create_brand(
    principal: Principal | None,
    name: str,
    earn_points: int = 1,
    earn_unit_fen: int = 100,
    *,
    timezone: str = "Asia/Shanghai",
    point_value: tuple[int, int] = (100, 100),
    idempotency_key: str | None = None,
) -> Brand:
    """The platform creates a brand (once per idempotency key, hub/resolvers/creations.py)."""
    p = policy.require(principal, policy.CREATE_BRAND)
    name = v.text(name, "name", max_length=100)
    earn_points, earn_unit_fen = _rate(earn_points, earn_unit_fen)
    timezone = timezone_name(timezone)
    point_value_points, point_value_fen = _point_value(*point_value)
    fields = {
        "name": name,
        "earn_points": earn_points,
        "earn_unit_fen": earn_unit_fen,
        "timezone": timezone,
        "point_value_points": point_value_points,
        "point_value_fen": point_value_fen,
    }

    async def create(conn: BaseDBAsyncClient) -> Brand:
        brand = await Brand.create(**fields, using_db=conn)
        await create_brand_accounts(brand.id, conn)
        await change_log.record(p, policy.CREATE_BRAND, brand, after=fields, using_db=conn)
        return brand

    brand, _ = await creations.create_once(p, idempotency_key, "createBrand", fields, Brand, create)
    return brand


async def set_earn_rate(
    principal: Principal | None, brand_id: int, earn_points: int, earn_unit_fen: int
) -> Brand:
    p = policy.require(principal, policy.SET_EARN_RATE)
    brand = await access.get_brand(p, policy.SET_EARN_RATE, brand_id)
    rate = ["earn_points", "earn_unit_fen"]
    before = change_log.snapshot(brand, rate)
    brand.earn_points, brand.earn_unit_fen = _rate(earn_points, earn_unit_fen)
    async with in_transaction() as conn:
        await brand.save(update_fields=rate, using_db=conn)
        await change_log.record(
            p,
            policy.SET_EARN_RATE,
            brand,
            before=before,
            after=change_log.snapshot(brand, rate),
            using_db=conn,
        )
    return brand


MAX_POINT_VALUE_TERM = 1_000_000
MAX_PENDING_DAYS = 90


def timezone_name(value: str) -> str:
    """An IANA time zone the brand's dates are reckoned in (``Asia/Shanghai``, ``Europe/Berlin``)."""
    value = v.text(value, "timezone", max_length=64)
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInput("Not a known IANA time zone, e.g. Asia/Shanghai.", "timezone") from None
    return value


def _point_value(points: int, fen: int) -> tuple[int, int]:
    for field, value in (("pointValuePoints", points), ("pointValueFen", fen)):
        if not 1 <= value <= MAX_POINT_VALUE_TERM:
            raise InvalidInput(f"Between 1 and {MAX_POINT_VALUE_TERM}.", field)
    return points, fen


async def update_brand_settings(
    principal: Principal | None,
    brand_id: int,
    *,
    timezone: str | None = None,
    point_value_points: int | None = None,
    point_value_fen: int | None = None,
    pending_days: int | None = None,
) -> Brand:
    """HQ sets the brand's clock, what its points are worth and its return window (earned points stay
    pending that many days: new purchases only); fields left out keep their value."""
    p = policy.require(principal, policy.UPDATE_BRAND_SETTINGS)
    brand = await access.get_brand(p, policy.UPDATE_BRAND_SETTINGS, brand_id)
    settings = ["timezone", "point_value_points", "point_value_fen", "pending_days"]
    before = change_log.snapshot(brand, settings)
    if timezone is not None:
        brand.timezone = timezone_name(timezone)
    brand.point_value_points, brand.point_value_fen = _point_value(
        brand.point_value_points if point_value_points is None else point_value_points,
        brand.point_value_fen if point_value_fen is None else point_value_fen,
    )
    if pending_days is not None:
        if not 0 <= pending_days <= MAX_PENDING_DAYS:
            raise InvalidInput(f"Between 0 and {MAX_PENDING_DAYS} days.", "pendingDays")
        brand.pending_days = pending_days
    async with in_transaction() as conn:
        await brand.save(update_fields=settings, using_db=conn)
        await change_log.record(
            p,
            policy.UPDATE_BRAND_SETTINGS,
            brand,
            before=before,
            after=change_log.snapshot(brand, settings),
            using_db=conn,
        )
    return brand


async def create_store(
    principal: Principal | None,
    brand_id: int,
    name: str,
    code: str,
    is_franchise: bool = False,
    idempotency_key: str | None = None,
) -> Store:
    """HQ opens a store. Its code is unique in the brand (ALREADY_EXISTS); with an idempotency key a
    retry answers the store it created."""
    p = policy.require(principal, policy.CREATE_STORE)
    name = v.text(name, "name", max_length=100)
    code = v.text(code, "code", max_length=32)
    await access.get_brand(principal, policy.CREATE_STORE, brand_id)
    fields = {"brand_id": brand_id, "name": name, "code": code, "is_franchise": is_franchise}

    async def create(conn: BaseDBAsyncClient) -> Store:
        try:
            store = await Store.create(**fields, using_db=conn)
        except IntegrityError:
            raise DomainError(
                ErrorCode.ALREADY_EXISTS, "This brand already has a store with that code.", "code"
            ) from None
        await change_log.record(p, policy.CREATE_STORE, store, after=fields, using_db=conn)
        return store

    store, _ = await creations.create_once(p, idempotency_key, "createStore", fields, Store, create)
    return store


def brands(principal: Principal | None) -> QuerySet[Brand]:
    """Brands in the caller's reach: every brand for the platform, else the caller's own."""
    return access.brands(principal, policy.LIST_BRANDS)


def stores_of(principal: Principal | None, brand_id: int) -> QuerySet[Store]:
    """One brand's stores, as far as the caller reaches."""
    return access.stores(principal, policy.READ_STORE).filter(brand_id=brand_id)
