"""A brand's lifecycle settings: expiring-soon notice lead times and the limits of member transfers.

A brand without a row has the defaults: notices 30 and 7 days ahead, transfers off.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tortoise.transactions import in_transaction

from hub import policy
from hub.auth import Principal
from hub.errors import InvalidInput
from hub.models import LifecycleSettings
from hub.resolvers import access
from hub.resolvers import validation as v

DEFAULT_LEAD_DAYS = (30, 7)
MAX_LEAD_DAYS = 365


@dataclass(frozen=True, slots=True)
class Settings:
    brand_id: int
    notice_lead_days: tuple[int, ...] = DEFAULT_LEAD_DAYS
    transfers_enabled: bool = False
    transfer_min: int = 1
    transfer_max_per_day: int | None = None


def _of(brand_id: int, row: LifecycleSettings | None) -> Settings:
    if row is None:
        return Settings(brand_id)
    return Settings(
        brand_id,
        tuple(int(d) for d in row.notice_lead_days),
        row.transfers_enabled,
        int(row.transfer_min),
        None if row.transfer_max_per_day is None else int(row.transfer_max_per_day),
    )


async def settings_of(brand_id: int) -> Settings:
    return _of(brand_id, await LifecycleSettings.get_or_none(brand_id=brand_id))


async def read_settings(principal: Principal | None, brand_id: int) -> Settings:
    brand = await access.get_brand(principal, policy.READ_LIFECYCLE_SETTINGS, brand_id)
    return await settings_of(brand.id)


_UNSET: Any = object()


async def update_settings(
    principal: Principal | None,
    brand_id: int,
    *,
    notice_lead_days: list[int] | None = None,
    transfers_enabled: bool | None = None,
    transfer_min: int | None = None,
    transfer_max_per_day: int | None = _UNSET,
) -> Settings:
    """HQ changes what it sends; fields left out keep their value (``transfer_max_per_day=None``: no
    daily maximum)."""
    brand = await access.get_brand(principal, policy.UPDATE_LIFECYCLE_SETTINGS, brand_id)
    if notice_lead_days is not None:
        if len(notice_lead_days) > 5 or any(not 1 <= d <= MAX_LEAD_DAYS for d in notice_lead_days):
            raise InvalidInput(f"At most 5 lead times, each 1 to {MAX_LEAD_DAYS} days.", "noticeLeadDays")
        notice_lead_days = sorted(set(notice_lead_days), reverse=True)
    if transfer_min is not None:
        v.positive(transfer_min, "transferMin")
    if transfer_max_per_day is not _UNSET and transfer_max_per_day is not None:
        v.positive(transfer_max_per_day, "transferMaxPerDay")
    async with in_transaction() as conn:
        row = await LifecycleSettings.filter(brand_id=brand.id).using_db(conn).select_for_update().first()
        if row is None:
            current = Settings(brand.id)
            row = LifecycleSettings(
                brand_id=brand.id,
                notice_lead_days=list(current.notice_lead_days),
                transfers_enabled=current.transfers_enabled,
                transfer_min=current.transfer_min,
                transfer_max_per_day=current.transfer_max_per_day,
            )
        if notice_lead_days is not None:
            row.notice_lead_days = notice_lead_days
        if transfers_enabled is not None:
            row.transfers_enabled = transfers_enabled
        if transfer_min is not None:
            row.transfer_min = transfer_min
        if transfer_max_per_day is not _UNSET:
            row.transfer_max_per_day = transfer_max_per_day
        if row.transfer_max_per_day is not None and row.transfer_max_per_day < row.transfer_min:
            raise InvalidInput("The daily maximum cannot be below the minimum.", "transferMaxPerDay")
        await row.save(using_db=conn)
    return _of(brand.id, row)
