"""Engagement: daily check-in and HQ-defined events. No GraphQL here.

Rewards are ledger transactions (kinds ``check_in`` and ``event_reward``); the rows below are the
domain's record of them, each written after its transaction committed and keyed by it, so a retry
finds or creates the same row (docs/engagement.md).
"""

from tortoise import fields
from tortoise.models import Model

from hub.domain import LimitPeriod

__all__ = ["CheckIn", "CheckInProgram", "EngagementEvent", "EngagementEventReward", "LimitPeriod"]


class CheckInProgram(Model):
    """A brand's daily check-in rewards, set by HQ. No row: the brand has no check-in."""

    id = fields.BigIntField(primary_key=True)
    brand: fields.OneToOneRelation = fields.OneToOneField(
        "models.Brand", related_name="check_in_program", on_delete=fields.RESTRICT
    )
    brand_id: int
    enabled = fields.BooleanField(default=True)
    # Points for every check-in.
    daily_points = fields.IntField(default=0)
    # Bonuses on top, by streak day: [{"day": 7, "points": 50}, ...], ascending, one per day.
    streak_bonuses: list = fields.JSONField(default=list)
    # Bonuses repeat every ``cycle_days`` days of an unbroken streak (7: day 7, 14, 21, ... get the
    # day-7 bonus); null: each bonus is paid once per streak.
    cycle_days = fields.IntField(null=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "check_in_program"


class CheckIn(Model):
    """One membership's check-in on one brand-local day, with the streak it reached."""

    id = fields.BigIntField(primary_key=True)
    brand: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "models.Brand", related_name="check_ins", on_delete=fields.RESTRICT
    )
    brand_id: int
    membership: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "models.Membership", related_name="check_ins", on_delete=fields.RESTRICT
    )
    membership_id: int
    # The brand-local date (Brand.timezone) the check-in counts for.
    day = fields.DateField()
    # Consecutive days up to and including ``day``.
    streak = fields.IntField()
    points = fields.BigIntField()
    # The reward: the ledger transaction whose claim is (``checkin``, ``<membership>:<day>``).
    transaction: fields.OneToOneRelation = fields.OneToOneField(
        "models.LedgerTransaction", related_name="check_in", on_delete=fields.RESTRICT
    )
    transaction_id: int
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "check_in"
        unique_together = (("membership", "day"),)


class EngagementEvent(Model):
    """Something HQ rewards (survey completed, profile completed, app downloaded), reported by a store
    or HQ, at most ``limit_per_member`` times per member in each ``limit_period``."""

    id = fields.BigIntField(primary_key=True)
    brand: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "models.Brand", related_name="engagement_events", on_delete=fields.RESTRICT
    )
    brand_id: int
    # What reporters send, unique per brand (``survey_2026``).
    code = fields.CharField(max_length=32)
    name = fields.CharField(max_length=100)
    points = fields.IntField()
    limit_per_member = fields.IntField(default=1)
    limit_period = fields.CharEnumField(
        LimitPeriod, max_length=8, default=LimitPeriod.TOTAL, description="hub.domain.LimitPeriod"
    )
    active = fields.BooleanField(default=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "engagement_event"
        unique_together = (("brand", "code"),)


class EngagementEventReward(Model):
    """One reward of an event to a member: the record of its ledger transaction."""

    id = fields.BigIntField(primary_key=True)
    brand: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "models.Brand", related_name="engagement_rewards", on_delete=fields.RESTRICT
    )
    brand_id: int
    event: fields.ForeignKeyRelation[EngagementEvent] = fields.ForeignKeyField(
        "models.EngagementEvent", related_name="rewards", on_delete=fields.RESTRICT
    )
    event_id: int
    membership: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "models.Membership", related_name="engagement_rewards", on_delete=fields.RESTRICT
    )
    membership_id: int
    # The limit's window this reward counted in (``2026-11``, ``2026-W45``, ``all``) and its counter.
    period = fields.CharField(max_length=16)
    guard_key = fields.CharField(max_length=160)
    points = fields.BigIntField()
    store: fields.ForeignKeyNullableRelation = fields.ForeignKeyField(
        "models.Store", related_name="engagement_rewards", null=True, on_delete=fields.RESTRICT
    )
    store_id: int | None
    transaction: fields.OneToOneRelation = fields.OneToOneField(
        "models.LedgerTransaction", related_name="engagement_reward", on_delete=fields.RESTRICT
    )
    transaction_id: int
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "engagement_event_reward"
        indexes = (("guard_key",), ("membership_id", "id"))
