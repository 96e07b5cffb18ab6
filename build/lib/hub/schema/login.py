"""A member logs in with a one-time code sent to the phone, for a token that reaches all its brands."""

from __future__ import annotations

from datetime import datetime

import strawberry

from hub import policy
from hub.resolvers import keys as service
from hub.schema.authorize import Authorize
from hub.schema.common import UserError, mutate
from hub.schema.context import Info


@strawberry.input(description="The phone to send a login code to.")
class RequestLoginCodeInput:
    phone: str = strawberry.field(description="A mainland number (13800138000) or +E.164.")


@strawberry.type(
    description=(
        "The result of requestLoginCode. The answer is the same whether or not the phone belongs to a"
        " member; only a member's phone is sent a code."
    )
)
class RequestLoginCodePayload:
    user_errors: list[UserError] = strawberry.field(
        description="INVALID_PHONE, or RATE_LIMITED after too many codes for this phone in an hour."
    )
    expires_at: datetime | None = strawberry.field(
        default=None, description="When a code sent now stops working."
    )


@strawberry.input(description="The phone and the code it was sent.")
class VerifyLoginCodeInput:
    phone: str = strawberry.field(description="The phone the code was sent to.")
    code: str = strawberry.field(description="The six digits received.")


@strawberry.type(description="The result of verifyLoginCode.")
class VerifyLoginCodePayload:
    user_errors: list[UserError] = strawberry.field(
        description="INVALID_CODE when the code is wrong, expired, used up or was never sent."
    )
    token: str | None = strawberry.field(
        default=None, description="A member token (fhm_…) that reaches all of this person's memberships."
    )
    expires_at: datetime | None = strawberry.field(default=None, description="When the token expires.")


@strawberry.type
class LoginMutation:
    @strawberry.mutation(
        description=(
            "Anyone: send a one-time login code to a member's phone (valid 5 minutes, 5 tries, at most"
            " 5 codes an hour per phone)."
        ),
        extensions=[Authorize(policy.REQUEST_CODE)],
    )
    async def request_login_code(self, info: Info, input: RequestLoginCodeInput) -> RequestLoginCodePayload:
        async def run() -> dict:
            codes = info.context.services.login_codes
            return {
                "expires_at": await service.request_login_code(info.context.principal, codes, input.phone)
            }

        return await mutate(RequestLoginCodePayload, run)

    @strawberry.mutation(
        description="Anyone: trade a login code for a member token that reaches all of the person's brands.",
        extensions=[Authorize(policy.VERIFY_CODE)],
    )
    async def verify_login_code(self, info: Info, input: VerifyLoginCodeInput) -> VerifyLoginCodePayload:
        async def run() -> dict:
            codes = info.context.services.login_codes
            token, expires_at = await service.verify_login_code(
                info.context.principal, codes, input.phone, input.code
            )
            return {"token": token, "expires_at": expires_at}

        return await mutate(VerifyLoginCodePayload, run)
