"""The change log: every configuration change and manual adjustment, with who made it and when.

A resolver that changed something records it in one line, after the change (inside its transaction
when it has one, so both commit or neither)::

    await change_log.record(p, policy.UPDATE_BRAND_SETTINGS, brand, before=old, after=new, using_db=conn)

``subject`` is the changed row (its type name and id are kept; its brand is the record's brand
unless ``brand_id`` says otherwise) or a ``Subject`` naming one (a ledger transaction the writer
committed). ``before``/``after`` are dicts of the fields as they were and are (``snapshot(row,
fields)`` makes them JSON-safe). HQ reads its brand's records and the platform every record
through ``changeLog`` (docs/records.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.models import Model
from tortoise.queryset import QuerySet

from hub import policy
from hub.auth import Principal
from hub.domain import Role
from hub.models import Brand, ChangeRecord
from hub.resolvers import access


@dataclass(frozen=True)
class Subject:
    """What a record is about when the resolver holds no ORM row of it."""

    type_name: str  # the GraphQL type, so that the record's subjectId is a global id
    id: int
    brand_id: int | None


def _json(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _json(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_json(v) for v in value]
    return value


def snapshot(row: Model | None, fields: list[str] | tuple[str, ...]) -> dict[str, Any] | None:
    """The named fields of a row as JSON values (None for no row: a creation's before)."""
    if row is None:
        return None
    return {name: _json(getattr(row, name)) for name in fields}


async def record(
    principal: Principal,
    action: policy.Action,
    subject: Model | Subject,
    *,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    brand_id: int | None = None,
    using_db: BaseDBAsyncClient | None = None,
) -> ChangeRecord:
    """Append one record of ``action`` on ``subject`` by ``principal``."""
    if isinstance(subject, Model):
        brand = subject.pk if isinstance(subject, Brand) else getattr(subject, "brand_id", None)
        subject = Subject(type(subject).__name__, subject.pk, brand)
    return await ChangeRecord.create(
        brand_id=subject.brand_id if brand_id is None else brand_id,
        actor_role=principal.role,
        actor_key_id=principal.key_id,
        action=action.name,
        subject_type=subject.type_name,
        subject_id=subject.id,
        before=_json(before) if before is not None else None,
        after=_json(after) if after is not None else None,
        using_db=using_db,
    )


async def changes(
    principal: Principal | None, brand_id: int | None = None, action: str | None = None
) -> QuerySet[ChangeRecord]:
    """Records the caller may read: HQ its brand's; the platform every record, or one brand's."""
    p = policy.require(principal, policy.READ_CHANGE_LOG)
    if brand_id is not None:
        await access.get_brand(p, policy.READ_CHANGE_LOG, brand_id)
    query = ChangeRecord.all() if p.role is Role.PLATFORM else ChangeRecord.filter(brand_id=p.brand_id)
    if brand_id is not None:
        query = query.filter(brand_id=brand_id)
    if action:
        query = query.filter(action=action)
    return query


async def record_once(principal: Principal, action: policy.Action, subject: Subject, **kwargs: Any) -> None:
    """``record`` unless ``subject`` already has a record of ``action``: for changes the ledger writer
    commits (a manual adjustment), recorded after their commit; a retry of the request (a replay)
    records what a crash right after the commit left unrecorded."""
    exists = await ChangeRecord.filter(
        action=action.name, subject_type=subject.type_name, subject_id=subject.id
    ).exists()
    if not exists:
        await record(principal, action, subject, **kwargs)
