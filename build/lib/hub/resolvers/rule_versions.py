"""HQ writes earning rules: every change is a new version with an effective time.

A rule's history is append-only: creating a rule writes version 1, an edit writes the next version
with the whole new content, retiring writes a version that switches the rule off. Each takes effect
at ``effectiveFrom`` (now by default, or later; never in the past, so a purchase already recorded is
never re-judged). The brand's ``rules_version`` is bumped in the same transaction, and every process
recompiles the brand's rule book at its next purchase (``hub/resolvers/earning.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.queryset import QuerySet
from tortoise.transactions import in_transaction

from hub import policy
from hub.auth import Principal
from hub.db import sql, with_retries
from hub.domain import EarnRuleKind
from hub.errors import InvalidInput, NotFound
from hub.models import Brand, EarnRule, EarnRuleVersion, Store
from hub.resolvers import access, change_log, creations
from hub.resolvers import validation as v
from hub.resolvers.earn_rules import RuleInput, validate

CLOCK_SKEW = timedelta(minutes=1)
LONGEST_NOTICE = timedelta(days=2 * 366)


@dataclass(frozen=True)
class RuleWrite:
    rule: EarnRule
    version: EarnRuleVersion


def effective_time(value: datetime | None) -> datetime:
    now = datetime.now(UTC)
    if value is None:
        return now
    if value.tzinfo is None:
        raise InvalidInput("Give the time zone (e.g. 2026-11-11T00:00:00+08:00).", "effectiveFrom")
    if value < now - CLOCK_SKEW:
        raise InvalidInput("A change takes effect now or later, never in the past.", "effectiveFrom")
    if value > now + LONGEST_NOTICE:
        raise InvalidInput("At most two years ahead.", "effectiveFrom")
    return max(value.astimezone(UTC), now)


async def _checked(brand_id: int, kind: EarnRuleKind, rule: RuleInput) -> tuple[RuleInput, dict]:
    name = v.text(rule.name, "rule.name", max_length=100)
    if not -1_000_000 <= rule.position <= 1_000_000:
        raise InvalidInput("Between -1000000 and 1000000.", "rule.position")
    rule = replace(rule, name=name)
    spec = validate(kind, rule)
    if rule.stores:
        found = await Store.filter(brand_id=brand_id, id__in=list(set(rule.stores))).count()
        if found != len(set(rule.stores)):
            raise NotFound("No such store in this brand.", "rule.storeIds")
    return rule, spec


async def _write_in(
    conn: BaseDBAsyncClient,
    principal: Principal,
    brand_id: int,
    rule: EarnRule | None,
    kind: EarnRuleKind,
    fields: dict,
    change: str,
) -> RuleWrite:
    # The brand's row first: it serialises the brand's rule changes (and numbers versions).
    await conn.execute_query(
        sql(conn, "UPDATE brand SET rules_version = rules_version + 1 WHERE id = ?"), [brand_id]
    )
    target = rule or await EarnRule.create(brand_id=brand_id, kind=kind, using_db=conn)
    last = await EarnRuleVersion.filter(rule_id=target.id).using_db(conn).order_by("-version").first()
    version = await EarnRuleVersion.create(
        rule_id=target.id,
        brand_id=brand_id,
        version=(last.version if last else 0) + 1,
        created_by_key_id=principal.key_id,
        using_db=conn,
        **fields,
    )
    after = {"change": change, "kind": kind, "version": version.version, **fields}
    await change_log.record(principal, policy.MANAGE_EARN_RULES, target, after=after, using_db=conn)
    return RuleWrite(target, version)


async def _write(
    principal: Principal,
    brand_id: int,
    rule: EarnRule | None,
    kind: EarnRuleKind,
    fields: dict,
    change: str,
) -> RuleWrite:
    async def write() -> RuleWrite:
        async with in_transaction() as conn:
            return await _write_in(conn, principal, brand_id, rule, kind, fields, change)

    return await with_retries(write)


async def create_rule(
    principal: Principal | None,
    brand_id: int,
    kind: EarnRuleKind,
    rule: RuleInput,
    effective_from: datetime | None = None,
    idempotency_key: str | None = None,
) -> RuleWrite:
    """Version 1 of a new rule. With an idempotency key a retry answers the rule it created
    (hub/resolvers/creations.py)."""
    brand = await access.get_brand(principal, policy.MANAGE_EARN_RULES, brand_id)
    p = policy.require(principal, policy.MANAGE_EARN_RULES)
    kind = EarnRuleKind(kind)
    rule, spec = await _checked(brand.id, kind, rule)
    fields = {
        "effective_from": effective_time(effective_from),
        "active": True,
        "name": rule.name,
        "position": rule.position,
        "spec": spec,
    }
    if idempotency_key is None:
        return await _write(p, brand.id, None, kind, fields, "create")
    # The request as sent (effectiveFrom as given, not the time it resolved to): a retry hashes alike.
    request = {"brand": brand.id, "kind": kind, "rule": {**fields, "effective_from": effective_from}}

    async def create(conn: BaseDBAsyncClient) -> EarnRule:
        return (await _write_in(conn, p, brand.id, None, kind, fields, "create")).rule

    made, _ = await with_retries(
        lambda: creations.create_once(p, idempotency_key, "createEarnRule", request, EarnRule, create)
    )
    return RuleWrite(made, await EarnRuleVersion.get(rule_id=made.id, version=1))


async def update_rule(
    principal: Principal | None, rule_id: int, rule: RuleInput, effective_from: datetime | None = None
) -> RuleWrite:
    """A new version with the whole new content (a retired rule comes back with it)."""
    target = await access.get_earn_rule(principal, policy.MANAGE_EARN_RULES, rule_id)
    p = policy.require(principal, policy.MANAGE_EARN_RULES)
    rule, spec = await _checked(target.brand_id, EarnRuleKind(target.kind), rule)
    fields = {
        "effective_from": effective_time(effective_from),
        "active": True,
        "name": rule.name,
        "position": rule.position,
        "spec": spec,
    }
    return await _write(p, target.brand_id, target, EarnRuleKind(target.kind), fields, "update")


async def retire_rule(
    principal: Principal | None, rule_id: int, effective_from: datetime | None = None
) -> RuleWrite:
    """A version that switches the rule off from ``effective_from`` on (its content kept as it was)."""
    target = await access.get_earn_rule(principal, policy.MANAGE_EARN_RULES, rule_id)
    p = policy.require(principal, policy.MANAGE_EARN_RULES)
    last = await EarnRuleVersion.filter(rule_id=target.id).order_by("-version").first()
    assert last is not None
    fields = {
        "effective_from": effective_time(effective_from),
        "active": False,
        "name": last.name,
        "position": last.position,
        "spec": last.spec,
    }
    return await _write(p, target.brand_id, target, EarnRuleKind(target.kind), fields, "retire")


async def rules_of(principal: Principal | None, brand_id: int) -> QuerySet[EarnRule]:
    brand: Brand = await access.get_brand(principal, policy.READ_EARN_RULES, brand_id)
    return EarnRule.filter(brand_id=brand.id)


def versions_of(rule_id: int) -> QuerySet[EarnRuleVersion]:
    return EarnRuleVersion.filter(rule_id=rule_id)


async def version_at(rule_id: int, at: datetime) -> EarnRuleVersion | None:
    """The version of the rule in force at ``at`` (None before its first version takes effect)."""
    return (
        await EarnRuleVersion.filter(rule_id=rule_id, effective_from__lte=at)
        .order_by("-effective_from", "-version")
        .first()
    )


async def latest_version(rule_id: int) -> EarnRuleVersion:
    found = await EarnRuleVersion.filter(rule_id=rule_id).order_by("-version").first()
    assert found is not None
    return found
