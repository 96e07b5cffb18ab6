"""The root types and the hardened schema."""

from __future__ import annotations

import logging
from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.extensions import (
    AddValidationRules,
    MaskErrors,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    ParserCache,
    QueryDepthLimiter,
    ValidationCache,
)
from strawberry.relay import GlobalIDValueError
from strawberry.schema.config import StrawberryConfig
from strawberry.types import ExecutionContext

from hub.errors import DomainError
from hub.schema.audit import AuditQuery
from hub.schema.brands import BrandMutation, BrandQuery
from hub.schema.common import BIGINT_SCALAR, BigInt
from hub.schema.jobs import Job, JobMutation, JobQuery
from hub.schema.keys import KeyMutation
from hub.schema.members import MemberMutation, MemberQuery
from hub.schema.nodes import Brand, LedgerTransaction, Membership, Store
from hub.schema.points import PointsMutation
from hub.schema.subscriptions import Subscription
from hub.settings import Settings

log = logging.getLogger("hub.errors")


def _query_type() -> type:
    # Built per schema: Strawberry's relay node field can belong to one schema only.
    @strawberry.type
    class Query(BrandQuery, MemberQuery, AuditQuery, JobQuery):
        node: strawberry.relay.Node | None = strawberry.relay.node()

    return Query


@strawberry.type
class Mutation(BrandMutation, KeyMutation, MemberMutation, PointsMutation, JobMutation):
    pass


def _expected(error: GraphQLError) -> bool:
    """Errors the client caused: validation, bad ids, domain errors. Everything else is masked."""
    original = error.original_error
    if original is None or error.path is None:  # parse, validation and variable coercion errors
        return True
    return isinstance(original, (DomainError, GlobalIDValueError, GraphQLError))


class HubSchema(strawberry.Schema):
    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        for error in errors:
            if not _expected(error):
                log.error("unexpected error in %s", error.path, exc_info=error.original_error)


def build_schema(settings: Settings | None = None) -> strawberry.Schema:
    settings = settings or Settings()
    # Factories: a fresh extension per request. The parser and validation caches are module-level
    # LRUs shared by all requests (they hit when clients send values as variables). The validation
    # cache is keyed by the rule classes too, so the limiters' rules are made once, here: a limiter
    # built per request would bring new classes and miss the cache every time.
    limit_rules = [
        *QueryDepthLimiter(max_depth=settings.max_query_depth).validation_rules,
        *MaxAliasesLimiter(max_alias_count=settings.max_aliases).validation_rules,
    ]
    extensions: list[Any] = [
        lambda: ParserCache(maxsize=1024),
        lambda: AddValidationRules(limit_rules),
        lambda: ValidationCache(maxsize=1024),
        lambda: MaxTokensLimiter(max_token_count=settings.max_query_tokens),
        lambda: MaskErrors(should_mask_error=lambda e: not _expected(e), error_message="Internal error."),
    ]
    return HubSchema(
        query=_query_type(),
        mutation=Mutation,
        subscription=Subscription,
        types=[Brand, Store, Membership, LedgerTransaction, Job],
        extensions=extensions,
        config=StrawberryConfig(scalar_map={BigInt: BIGINT_SCALAR}),
    )
