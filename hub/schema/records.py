"""Records: the change log (and, in this room, personal data export and erasure)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, cast

import strawberry
from strawberry import relay
from strawberry.scalars import JSON

from hub import policy
from hub.resolvers import change_log
from hub.schema.authorize import Authorize
from hub.schema.common import BigInt, Connection, decode_id, encode_id
from hub.schema.context import Info
from hub.schema.nodes import AFTER, FIRST, RoleEnum, connection


@strawberry.type(description="One configuration change or manual adjustment, as it was recorded.")
class ChangeRecord:
    number: BigInt = strawberry.field(description="The record's number; later records have larger ones.")
    created_at: datetime = strawberry.field(description="When the change was made.")
    action: str = strawberry.field(
        description="What was done: the policy action, e.g. `brand.updateSettings` (docs/security.md)."
    )
    actor_role: RoleEnum = strawberry.field(description="The role of the caller who made it.")  # type: ignore[valid-type]
    actor_key_id: relay.GlobalID | None = strawberry.field(
        description="The ApiKey that made it; null for the operator's command line."
    )
    brand_id: relay.GlobalID | None = strawberry.field(
        description="The brand it belongs to; null for platform-wide things."
    )
    subject_type: str = strawberry.field(description="The kind of thing changed, e.g. Brand, EarnRule.")
    subject_id: relay.GlobalID | None = strawberry.field(
        description="The global id of the thing changed (of type subjectType)."
    )
    before: JSON | None = strawberry.field(description="The changed fields before; null for a creation.")
    after: JSON | None = strawberry.field(description="The changed fields after.")

    @classmethod
    def from_model(cls, m: Any) -> ChangeRecord:
        return cls(
            number=BigInt(m.id),
            created_at=m.created_at,
            action=m.action,
            actor_role=m.actor_role,
            actor_key_id=encode_id("ApiKey", m.actor_key_id),
            brand_id=encode_id("Brand", m.brand_id),
            subject_type=m.subject_type,
            subject_id=encode_id(m.subject_type, m.subject_id),
            before=cast(JSON, m.before),
            after=cast(JSON, m.after),
        )


@strawberry.type
class RecordsQuery:
    @strawberry.field(
        description=(
            "Platform or brand HQ: the log of configuration changes and manual adjustments, newest"
            " first. HQ reads its brand's; the platform every record, or one brand's."
        ),
        extensions=[Authorize(policy.READ_CHANGE_LOG)],
    )
    async def change_log(
        self,
        info: Info,
        brand_id: Annotated[
            relay.GlobalID | None, strawberry.argument(description="Only this brand's records.")
        ] = None,
        action: Annotated[
            str | None, strawberry.argument(description="Only records of this action, e.g. key.create.")
        ] = None,
        first: Annotated[int, strawberry.argument(description=FIRST)] = 20,
        after: Annotated[str | None, strawberry.argument(description=AFTER)] = None,
    ) -> Connection[ChangeRecord]:
        brand = decode_id(brand_id, "Brand", "brandId") if brand_id else None
        query = await change_log.changes(info.context.principal, brand, action)
        return await connection(info, query, ChangeRecord.from_model, first, after, True)
