"""Brands and stores: queries and mutations."""

from __future__ import annotations

from typing import Annotated

import strawberry

from hub import policy
from hub.resolvers import brands as service
from hub.schema.authorize import Authorize
from hub.schema.common import CREATE_IDEMPOTENCY_HELP, USER_ERRORS, Connection, UserError, decode_id, mutate
from hub.schema.context import Info
from hub.schema.nodes import AFTER, FIRST, Brand, Store, connection


@strawberry.input(description="A new brand (platform only). Its HQ gets a key with createApiKey.")
class CreateBrandInput:
    name: str = strawberry.field(description="The brand's name.")
    earn_points: int = strawberry.field(default=1, description="Points per earnUnitFen spent.")
    earn_unit_fen: int = strawberry.field(default=100, description="Fen per earnPoints (100 = ¥1).")
    timezone: str = strawberry.field(
        default="Asia/Shanghai", description="IANA time zone of the brand's days and periods."
    )
    point_value_points: int = strawberry.field(
        default=100, description="Points in the point value ratio (pointValuePoints are worth pointValueFen)."
    )
    point_value_fen: int = strawberry.field(default=100, description="Fen those points are worth.")
    idempotency_key: str | None = strawberry.field(default=None, description=CREATE_IDEMPOTENCY_HELP)


@strawberry.type(description="The result of createBrand.")
class CreateBrandPayload:
    user_errors: list[UserError] = strawberry.field(description=USER_ERRORS)
    brand: Brand | None = strawberry.field(default=None, description="The new brand; null on userErrors.")


@strawberry.input(description="A new store of a brand.")
class CreateStoreInput:
    brand_id: strawberry.ID = strawberry.field(description="The brand (HQ: its own).")
    name: str = strawberry.field(description="The store's name.")
    code: str = strawberry.field(description="The brand's code for the store, unique within the brand.")
    is_franchise: bool = strawberry.field(default=False, description="Whether a franchisee runs it.")
    idempotency_key: str | None = strawberry.field(default=None, description=CREATE_IDEMPOTENCY_HELP)


@strawberry.type(description="The result of createStore.")
class CreateStorePayload:
    user_errors: list[UserError] = strawberry.field(description=USER_ERRORS)
    store: Store | None = strawberry.field(default=None, description="The new store; null on userErrors.")


@strawberry.input(description="A brand's new base earn rate: earnPoints points per earnUnitFen fen.")
class SetEarnRateInput:
    brand_id: strawberry.ID = strawberry.field(description="The brand (HQ: its own).")
    earn_points: int = strawberry.field(description="Points per earnUnitFen spent.")
    earn_unit_fen: int = strawberry.field(description="Fen per earnPoints (100 = ¥1).")


@strawberry.type(description="The result of setEarnRate.")
class SetEarnRatePayload:
    user_errors: list[UserError] = strawberry.field(description=USER_ERRORS)
    brand: Brand | None = strawberry.field(default=None, description="The brand with its new rate.")


@strawberry.input(description="Fields left out keep their value.")
class UpdateBrandSettingsInput:
    brand_id: strawberry.ID = strawberry.field(description="The brand (HQ: its own).")
    timezone: str | None = strawberry.field(
        default=None, description="IANA time zone, e.g. Asia/Shanghai; applies to what is reckoned from now."
    )
    point_value_points: int | None = strawberry.field(
        default=None, description="Points in the point value ratio (1 to 1,000,000)."
    )
    point_value_fen: int | None = strawberry.field(
        default=None, description="Fen those points are worth (1 to 1,000,000)."
    )
    pending_days: int | None = strawberry.field(
        default=None,
        description="Return window: earned points stay pending this many days (0 to 90; 0: none).",
    )


@strawberry.type(description="The result of updateBrandSettings.")
class UpdateBrandSettingsPayload:
    user_errors: list[UserError] = strawberry.field(description=USER_ERRORS)
    brand: Brand | None = strawberry.field(default=None, description="The brand with its new settings.")


@strawberry.type
class BrandQuery:
    @strawberry.field(
        description=(
            "Brands in the caller's reach: every brand for the platform, its own for HQ and stores,"
            " the brands a member belongs to."
        ),
        extensions=[Authorize(policy.LIST_BRANDS)],
    )
    async def brands(
        self,
        info: Info,
        first: Annotated[int, strawberry.argument(description=FIRST)] = 20,
        after: Annotated[str | None, strawberry.argument(description=AFTER)] = None,
    ) -> Connection[Brand]:
        query = service.brands(info.context.principal)
        return await connection(info, query, Brand.from_model, first, after)


@strawberry.type
class BrandMutation:
    @strawberry.mutation(
        description="Platform: create a brand with its base earn rate.",
        extensions=[Authorize(policy.CREATE_BRAND)],
    )
    async def create_brand(self, info: Info, input: CreateBrandInput) -> CreateBrandPayload:
        async def run() -> dict:
            brand = await service.create_brand(
                info.context.principal,
                input.name,
                input.earn_points,
                input.earn_unit_fen,
                timezone=input.timezone,
                point_value=(input.point_value_points, input.point_value_fen),
                idempotency_key=input.idempotency_key,
            )
            return {"brand": Brand.from_model(brand)}

        return await mutate(CreateBrandPayload, run)

    @strawberry.mutation(description="Brand HQ: open a store.", extensions=[Authorize(policy.CREATE_STORE)])
    async def create_store(self, info: Info, input: CreateStoreInput) -> CreateStorePayload:
        async def run() -> dict:
            store = await service.create_store(
                info.context.principal,
                decode_id(input.brand_id, "Brand", "brandId"),
                input.name,
                input.code,
                input.is_franchise,
                idempotency_key=input.idempotency_key,
            )
            return {"store": Store.from_model(store)}

        return await mutate(CreateStorePayload, run)

    @strawberry.mutation(
        description="Brand HQ: set the base earn rate (rounded down per purchase).",
        extensions=[Authorize(policy.SET_EARN_RATE)],
    )
    async def set_earn_rate(self, info: Info, input: SetEarnRateInput) -> SetEarnRatePayload:
        async def run() -> dict:
            brand = await service.set_earn_rate(
                info.context.principal,
                decode_id(input.brand_id, "Brand", "brandId"),
                input.earn_points,
                input.earn_unit_fen,
            )
            return {"brand": Brand.from_model(brand)}

        return await mutate(SetEarnRatePayload, run)

    @strawberry.mutation(
        description="Brand HQ: set the brand's time zone, what its points are worth and its return window.",
        extensions=[Authorize(policy.UPDATE_BRAND_SETTINGS)],
    )
    async def update_brand_settings(
        self, info: Info, input: UpdateBrandSettingsInput
    ) -> UpdateBrandSettingsPayload:
        async def run() -> dict:
            brand = await service.update_brand_settings(
                info.context.principal,
                decode_id(input.brand_id, "Brand", "brandId"),
                timezone=input.timezone,
                point_value_points=input.point_value_points,
                point_value_fen=input.point_value_fen,
                pending_days=input.pending_days,
            )
            return {"brand": Brand.from_model(brand)}

        return await mutate(UpdateBrandSettingsPayload, run)
