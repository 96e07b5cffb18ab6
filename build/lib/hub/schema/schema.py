"""The root types and the hardened schema."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.extensions import AddValidationRules, MaxTokensLimiter, ParserCache, ValidationCache
from strawberry.schema.config import StrawberryConfig
from strawberry.types import ExecutionContext, ExecutionResult
from strawberry.types.graphql import OperationType

from hub import metrics, policy
from hub.errors import RequestErrorCode
from hub.schema.audit import AuditQuery
from hub.schema.authorize import Authorize
from hub.schema.brands import BrandMutation, BrandQuery
from hub.schema.catalog import CatalogMutation, CatalogQuery, GiftItem, GiftOrder
from hub.schema.checkin import CheckInMutation, CheckInQuery
from hub.schema.checkout import CheckoutMutation, CheckoutQuery
from hub.schema.common import BIGINT_SCALAR, BigInt, describe_mutation_inputs
from hub.schema.coupons import Coupon, CouponMutation, CouponQuery, CouponTemplate
from hub.schema.earning import EarningMutation, EarningQuery, EarnRule
from hub.schema.extensions import Hardening, is_expected, shape_errors
from hub.schema.grants import GrantMutation, GrantQuery
from hub.schema.introspection import IntrospectionGate
from hub.schema.jobs import Job, JobMutation, JobQuery, JobSubscription
from hub.schema.keys import ApiKey, KeyMutation, KeyQuery
from hub.schema.lifecycle import LifecycleMutation, LifecycleQuery, LifecycleSubscription
from hub.schema.login import LoginMutation
from hub.schema.members import MemberMutation, MemberQuery
from hub.schema.nodes import Brand, LedgerTransaction, Membership, Store
from hub.schema.partnerships import (
    ClearingMutation,
    ClearingQuery,
    PartnerOffer,
    PartnerRedemption,
    Partnership,
    PartnershipMutation,
    PartnershipQuery,
    PartnershipStatement,
    PartnershipSubscription,
    RedemptionMutation,
    StatementMutation,
    StatementQuery,
)
from hub.schema.passes import PassMutation, PassProduct, PassQuery, ServicePass
from hub.schema.points import PointsMutation
from hub.schema.records import PersonalDataQuery, RecordsMutation, RecordsQuery
from hub.schema.referrals import ReferralMutation
from hub.schema.reports import ReportsQuery
from hub.schema.rewards import EngagementEvent, RewardsMutation, RewardsQuery
from hub.schema.subscriptions import SharedEventExecution
from hub.schema.subscriptions import Subscription as BalanceSubscription
from hub.schema.tiers import TierMutation, TierSubscription
from hub.schema.validation_rules import limit_rules
from hub.schema.wallets import WalletMutation
from hub.settings import Settings

log = logging.getLogger("hub.errors")


def _query_type() -> type:
    # Built per schema: Strawberry's relay node field can belong to one schema only.
    @strawberry.type(description="Reads: start from viewer, brands, memberships or node(id:).")
    class Query(
        BrandQuery,
        MemberQuery,
        AuditQuery,
        KeyQuery,
        JobQuery,
        CheckInQuery,
        RewardsQuery,
        GrantQuery,
        CouponQuery,
        EarningQuery,
        LifecycleQuery,
        ReportsQuery,
        RecordsQuery,
        PersonalDataQuery,
        CheckoutQuery,
        CatalogQuery,
        PassQuery,
        PartnershipQuery,
        StatementQuery,
        ClearingQuery,
    ):
        node: strawberry.relay.Node | None = strawberry.relay.node(
            description=(
                "Any object by its global id; null when it does not exist or is out of the caller's"
                " reach (the two are not told apart)."
            ),
            extensions=[Authorize(policy.NODE)],
        )

    return Query


@strawberry.type(
    description=(
        "Writes. Each takes one input object and answers a payload whose userErrors say why it did"
        " not write; writes that move value take an idempotency key."
    )
)
class Mutation(
    BrandMutation,
    KeyMutation,
    LoginMutation,
    MemberMutation,
    PointsMutation,
    JobMutation,
    CheckInMutation,
    RewardsMutation,
    GrantMutation,
    CouponMutation,
    EarningMutation,
    TierMutation,
    ReferralMutation,
    LifecycleMutation,
    CheckoutMutation,
    WalletMutation,
    CatalogMutation,
    PassMutation,
    PartnershipMutation,
    RedemptionMutation,
    StatementMutation,
    RecordsMutation,
    ClearingMutation,
):
    pass


@strawberry.type(description="Live events over graphql-transport-ws on the same /graphql path.")
class Subscription(
    BalanceSubscription, JobSubscription, TierSubscription, LifecycleSubscription, PartnershipSubscription
):
    pass


class HubSchema(strawberry.Schema):
    # Set by build_schema: the longest a query or mutation may run.
    request_timeout_seconds: float | None = None

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        for error in errors:
            if not is_expected(error):
                log.error("unexpected error in %s", error.path, exc_info=error.original_error)

    async def execute(self, query: str | None, *args: Any, **kwargs: Any) -> ExecutionResult:
        """Execute with a deadline. On timeout the operation is cancelled and answered TIMEOUT; a ledger
        write already handed to the ledger writer completes on its own (its idempotency key answers a
        retry with its result)."""
        allowed = kwargs.get("allowed_operation_types")
        if allowed is not None:
            # Over HTTP (the view names the allowed types) a subscription would run its field once as a
            # query's and fail inside: refused instead (InvalidOperationTypeError, a 400 from the app).
            # Subscriptions run over graphql-transport-ws, through subscribe().
            kwargs["allowed_operation_types"] = set(allowed) - {OperationType.SUBSCRIPTION}
        try:
            async with asyncio.timeout(self.request_timeout_seconds or None):
                result = await super().execute(query, *args, **kwargs)
        except TimeoutError:
            name = kwargs.get("operation_name")
            log.warning(
                "operation %s timed out after %g s", name or "(anonymous)", self.request_timeout_seconds
            )
            metrics.GRAPHQL_REQUESTS.labels(metrics.operation_label(name), "unknown", "timeout").inc()
            error = GraphQLError(
                f"The request took longer than {self.request_timeout_seconds:g} s and was stopped.",
                extensions={"code": RequestErrorCode.TIMEOUT.value},
            )
            return ExecutionResult(data=None, errors=[error])
        # Errors raised by extension hooks (a syntax error from the parser cache, ...) are not shaped by
        # the Hardening extension: shape them here.
        result.errors = shape_errors(result.errors, validated=True)
        return result


def build_schema(settings: Settings | None = None) -> strawberry.Schema:
    settings = settings or Settings()
    # Factories: a fresh extension per request. The parser and validation caches are module-level
    # LRUs shared by all requests (they hit when clients send values as variables). The validation
    # cache is keyed by the rule classes too, so the limit rules are made once, here: rules built per
    # request would bring new classes and miss the cache every time.
    rules = limit_rules(settings.max_query_depth, settings.max_aliases)
    extensions: list[Any] = [
        # First, so that it encloses the others: it times everything and sees the final errors.
        lambda: Hardening(settings.max_query_cost, settings.max_page_size),
        lambda: ParserCache(maxsize=1024),
        lambda: AddValidationRules(rules),
        lambda: ValidationCache(maxsize=1024),
        lambda: MaxTokensLimiter(max_token_count=settings.max_query_tokens),
    ]
    if not settings.introspection_is_public:
        extensions.append(IntrospectionGate)
    schema = HubSchema(
        query=_query_type(),
        mutation=Mutation,
        subscription=Subscription,
        types=[
            Brand,
            Store,
            Membership,
            LedgerTransaction,
            ApiKey,
            Job,
            EngagementEvent,
            CouponTemplate,
            Coupon,
            EarnRule,
            GiftItem,
            GiftOrder,
            PassProduct,
            ServicePass,
            Partnership,
            PartnerOffer,
            PartnerRedemption,
            PartnershipStatement,
        ],
        extensions=extensions,
        config=StrawberryConfig(scalar_map={BigInt: BIGINT_SCALAR}),
        # One execution of a balance event per operation, shared by its subscribers in this process.
        execution_context_class=SharedEventExecution,
    )
    schema.request_timeout_seconds = settings.request_timeout_seconds
    describe_mutation_inputs(schema._schema)
    return schema
