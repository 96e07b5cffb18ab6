"""Earning rules: their canonical form, validation, compilation, and the evaluation itself.

Pure code: nothing here reads or writes the database. ``hub/resolvers/earning.py`` loads a brand's rule
versions, compiles them once per ``Brand.rules_version`` into a ``RuleBook`` and evaluates purchases
against it. The semantics (docs/earning.md, "How rules stack"):

1. Rules are ordered by ``position``, then by rule id. Each line of the purchase starts from its base
   rate: the first ``BASE_RATE`` rule naming the purchase's store, else the first brand-wide one, else
   the brand's ``earnRate``.
2. The line rules (``CATEGORY_RATE``, ``MULTIPLIER``) are walked in order. The first matching category
   rate replaces the line's base rate; matching multipliers are candidates, and of each ``group`` only
   the highest applies (a tie: the earlier rule); the groups' winners multiply. A matching rule with
   ``stop`` ends the walk for that line (a base rate with ``stop``: no line rule applies).
3. A line earns ``floor(amount x rate x product of multipliers)``: exact fractions, rounded down once
   per line. In the breakdown the rate gets ``floor(amount x rate)`` and each multiplier what it
   added to the running floor, so the entries of a line add up to its points exactly.
4. Then, on the sum of the lines: every matching ``MINIMUM_BILL`` (below it: no rate points),
   ``PURCHASE_CAP`` (the smallest matching cap), then ``DAILY_CAP`` (per member and brand-local day,
   counted by a ledger guard). They always apply; ``stop`` does not reach them.
5. Bonuses add, walked in order: ``FIRST_PURCHASE_BONUS`` (the membership's first purchase) and
   ``BIRTHDAY_BONUS`` (the birthday's day or month, once a year), each at most once (a guard), a
   matching bonus with ``stop`` ending the walk. Caps do not reduce bonuses.

Time conditions (``dates``, ``weekdays``, ``timeFrom``/``timeTo``) are read in the brand's time zone
at the purchase's own time. Points are integers throughout; rates and multipliers are exact ratios.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from fractions import Fraction
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

from hub.domain import BirthdayWindow, EarnRuleKind
from hub.errors import ErrorCode, InvalidInput
from hub.ledger.commands import Guard

K = EarnRuleKind
MAX_LINES = 200
MAX_RULE_POINTS = 10_000_000
MAX_MULTIPLIER = 100
MAX_LIST = 100
TEXT_ITEM = re.compile(r"[A-Za-z0-9][A-Za-z0-9 _./:-]{0,63}")
TIER_CODE = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")
CLOCK = re.compile(r"([01]\d|2[0-3]):([0-5]\d)")
# Marks the guards of an evaluation: the submitter re-evaluates when one of them refuses a command.
EARN_GUARD_FIELD = "earnGuard"


@dataclass(frozen=True, slots=True)
class PurchaseLine:
    """One line of a bill: what was bought, for how much (fen)."""

    amount_fen: int
    category: str = ""
    margin_class: str = ""
    sku: str = ""


# --- what HQ sends, and its canonical form ----------------------------------------------------------


@dataclass(frozen=True)
class RuleInput:
    """A rule as HQ writes it: every field optional; which ones a kind takes is checked by ``validate``."""

    name: str
    position: int = 0
    stop: bool = False
    stores: tuple[int, ...] = ()
    categories: tuple[str, ...] = ()
    margin_classes: tuple[str, ...] = ()
    skus: tuple[str, ...] = ()
    tiers: tuple[str, ...] = ()
    dates: tuple[date, ...] = ()
    weekdays: tuple[int, ...] = ()
    time_from: str | None = None
    time_to: str | None = None
    min_amount_fen: int | None = None
    rate_points: int | None = None
    rate_unit_fen: int | None = None
    multiplier_numerator: int | None = None
    multiplier_denominator: int | None = None
    group: str | None = None
    points: int | None = None
    birthday: BirthdayWindow | None = None
    referrer_points: int | None = None
    referee_points: int | None = None
    max_per_referrer: int | None = None


# The GraphQL name of each field (errors name it) and which kinds take it.
_FIELDS = {
    "stop": "stop",
    "stores": "storeIds",
    "categories": "categories",
    "margin_classes": "marginClasses",
    "skus": "skus",
    "tiers": "tiers",
    "dates": "dates",
    "weekdays": "weekdays",
    "time_from": "timeFrom",
    "time_to": "timeTo",
    "min_amount_fen": "minAmountFen",
    "rate_points": "ratePoints",
    "rate_unit_fen": "rateUnitFen",
    "multiplier_numerator": "multiplierNumerator",
    "multiplier_denominator": "multiplierDenominator",
    "group": "group",
    "points": "points",
    "birthday": "birthday",
    "referrer_points": "referrerPoints",
    "referee_points": "refereePoints",
    "max_per_referrer": "maxPerReferrer",
}
_LINE = {"categories", "margin_classes", "skus"}
_WHEN = {"stores", "tiers", "dates", "weekdays", "time_from", "time_to", "min_amount_fen"}
_RATE = {"rate_points", "rate_unit_fen"}
_MULTIPLIER = {"multiplier_numerator", "multiplier_denominator"}
ALLOWED: dict[EarnRuleKind, set[str]] = {
    K.BASE_RATE: {"stop", "stores", *_RATE},
    K.CATEGORY_RATE: {"stop", *_RATE, *_LINE, *_WHEN},
    K.MULTIPLIER: {"stop", *_MULTIPLIER, "group", *_LINE, *_WHEN},
    K.MINIMUM_BILL: {"min_amount_fen", "stores", "tiers", "dates", "weekdays", "time_from", "time_to"},
    K.PURCHASE_CAP: {"points", *_WHEN},
    K.DAILY_CAP: {"points"},
    K.FIRST_PURCHASE_BONUS: {"stop", "points", "stores", "min_amount_fen"},
    K.BIRTHDAY_BONUS: {"stop", "points", "birthday", "stores", "min_amount_fen"},
    K.REFERRAL: {"referrer_points", "referee_points", "max_per_referrer", "min_amount_fen"},
}
REQUIRED: dict[EarnRuleKind, set[str]] = {
    K.BASE_RATE: set(_RATE),
    K.CATEGORY_RATE: set(_RATE),
    K.MULTIPLIER: set(_MULTIPLIER),
    K.MINIMUM_BILL: {"min_amount_fen"},
    K.PURCHASE_CAP: {"points"},
    K.DAILY_CAP: {"points"},
    K.FIRST_PURCHASE_BONUS: {"points"},
    K.BIRTHDAY_BONUS: {"points", "birthday"},
    K.REFERRAL: set(),
}


def _given(rule: RuleInput, name: str) -> bool:
    value = getattr(rule, name)
    return not (value is None or value is False or value == ())


def _bad(message: str, name: str) -> InvalidInput:
    return InvalidInput(message, f"rule.{_FIELDS.get(name, name)}")


def _items(values: Sequence[str], name: str, pattern: re.Pattern[str]) -> list[str]:
    if len(values) > MAX_LIST:
        raise _bad(f"At most {MAX_LIST} values.", name)
    out = []
    for value in values:
        if not pattern.fullmatch(value):
            raise _bad(f"{value!r} is not a valid value here.", name)
        out.append(value)
    return sorted(set(out))


def _int(value: int | None, name: str, low: int, high: int) -> int:
    if value is None or isinstance(value, bool) or not low <= value <= high:
        raise _bad(f"Must be between {low} and {high}.", name)
    return value


def validate(kind: EarnRuleKind, rule: RuleInput) -> dict[str, Any]:
    """The canonical spec of a rule (what a version stores), or INVALID_INPUT naming the field."""
    given = {name for name in _FIELDS if _given(rule, name)}
    for name in (n for n in _FIELDS if n in given - ALLOWED[kind]):
        raise _bad(f"A {kind.value} rule does not take this field.", name)
    for name in (n for n in _FIELDS if n in REQUIRED[kind] - given):
        raise _bad(f"A {kind.value} rule needs this field.", name)
    spec: dict[str, Any] = {}
    if rule.stop:
        spec["stop"] = True
    if rule.stores:
        if len(rule.stores) > MAX_LIST:
            raise _bad(f"At most {MAX_LIST} stores.", "stores")
        spec["stores"] = sorted(set(rule.stores))
    for name, key in (("categories", "categories"), ("margin_classes", "marginClasses"), ("skus", "skus")):
        if getattr(rule, name):
            spec[key] = _items(getattr(rule, name), name, TEXT_ITEM)
    if kind is K.CATEGORY_RATE and not (rule.categories or rule.margin_classes or rule.skus):
        raise _bad("A category rate names categories, margin classes or SKUs.", "categories")
    if rule.tiers:
        spec["tiers"] = _items(rule.tiers, "tiers", TIER_CODE)
    if rule.dates:
        if len(rule.dates) > 366:
            raise _bad("At most 366 dates.", "dates")
        spec["dates"] = sorted({d.isoformat() for d in rule.dates})
    if rule.weekdays:
        for day in rule.weekdays:
            _int(day, "weekdays", 1, 7)
        spec["weekdays"] = sorted(set(rule.weekdays))
    if (rule.time_from is None) != (rule.time_to is None):
        raise _bad("Give both timeFrom and timeTo.", "time_from" if rule.time_from is None else "time_to")
    if rule.time_from is not None and rule.time_to is not None:
        for name in ("time_from", "time_to"):
            if not CLOCK.fullmatch(getattr(rule, name)):
                raise _bad("A time of day as HH:MM (00:00 to 23:59).", name)
        if rule.time_from == rule.time_to:
            raise _bad("timeTo must differ from timeFrom (a window across midnight is allowed).", "time_to")
        spec["timeFrom"], spec["timeTo"] = rule.time_from, rule.time_to
    if rule.min_amount_fen is not None:
        spec["minAmountFen"] = _int(rule.min_amount_fen, "min_amount_fen", 1, 2**31 - 1)
    if rule.rate_points is not None or rule.rate_unit_fen is not None:
        points = _int(rule.rate_points, "rate_points", 0, 10_000)
        unit = _int(rule.rate_unit_fen, "rate_unit_fen", 1, 1_000_000)
        if points > unit:
            raise _bad("At most one point per fen: ratePoints cannot exceed rateUnitFen.", "rate_points")
        spec["rate"] = [points, unit]
    if rule.multiplier_numerator is not None or rule.multiplier_denominator is not None:
        num = _int(rule.multiplier_numerator, "multiplier_numerator", 0, 10_000)
        den = _int(rule.multiplier_denominator, "multiplier_denominator", 1, 10_000)
        if Fraction(num, den) > MAX_MULTIPLIER:
            raise _bad(f"A multiplier is at most {MAX_MULTIPLIER}.", "multiplier_numerator")
        spec["multiplier"] = [num, den]
    if kind is K.MULTIPLIER:
        group = (rule.group or "default").strip()
        if not TEXT_ITEM.fullmatch(group):
            raise _bad("A short name: letters, digits, space, _ . / : -", "group")
        spec["group"] = group
    if rule.points is not None:
        low = 0 if kind in (K.PURCHASE_CAP, K.DAILY_CAP) else 1  # a cap of 0: no rate points at all
        spec["points"] = _int(rule.points, "points", low, MAX_RULE_POINTS)
    if rule.birthday is not None:
        spec["birthday"] = BirthdayWindow(rule.birthday).value
    if kind is K.REFERRAL:
        referrer = _int(rule.referrer_points or 0, "referrer_points", 0, MAX_RULE_POINTS)
        referee = _int(rule.referee_points or 0, "referee_points", 0, MAX_RULE_POINTS)
        if referrer == referee == 0:
            raise _bad("Reward the referrer, the referee, or both.", "referrer_points")
        spec["referrerPoints"], spec["refereePoints"] = referrer, referee
        if rule.max_per_referrer is not None:
            spec["maxPerReferrer"] = _int(rule.max_per_referrer, "max_per_referrer", 1, 1_000_000)
    return spec


def rule_input(spec: Mapping[str, Any], name: str, position: int) -> RuleInput:
    """The input that gives this spec (to edit one field of a stored version and keep the rest)."""
    rate = spec.get("rate") or (None, None)
    mult = spec.get("multiplier") or (None, None)
    return RuleInput(
        name=name,
        position=position,
        stop=bool(spec.get("stop")),
        stores=tuple(spec.get("stores", ())),
        categories=tuple(spec.get("categories", ())),
        margin_classes=tuple(spec.get("marginClasses", ())),
        skus=tuple(spec.get("skus", ())),
        tiers=tuple(spec.get("tiers", ())),
        dates=tuple(date.fromisoformat(d) for d in spec.get("dates", ())),
        weekdays=tuple(spec.get("weekdays", ())),
        time_from=spec.get("timeFrom"),
        time_to=spec.get("timeTo"),
        min_amount_fen=spec.get("minAmountFen"),
        rate_points=rate[0],
        rate_unit_fen=rate[1],
        multiplier_numerator=mult[0],
        multiplier_denominator=mult[1],
        group=spec.get("group"),
        points=spec.get("points"),
        birthday=BirthdayWindow(spec["birthday"]) if spec.get("birthday") else None,
        referrer_points=spec.get("referrerPoints"),
        referee_points=spec.get("refereePoints"),
        max_per_referrer=spec.get("maxPerReferrer"),
    )


# --- compiled rules ---------------------------------------------------------------------------------


def _minutes(clock: str) -> int:
    hours, minutes = clock.split(":")
    return int(hours) * 60 + int(minutes)


@dataclass(frozen=True, slots=True)
class CompiledRule:
    """One rule version, ready to evaluate: sets for membership tests, exact fractions for amounts."""

    rule_id: int
    version: int
    kind: EarnRuleKind
    name: str
    position: int
    spec: Mapping[str, Any]
    stop: bool = False
    stores: frozenset[int] | None = None
    tiers: frozenset[str] | None = None
    dates: frozenset[date] | None = None
    weekdays: frozenset[int] | None = None
    window: tuple[int, int] | None = None  # minutes after local midnight: [from, to), may wrap
    min_amount_fen: int | None = None
    categories: frozenset[str] | None = None
    margin_classes: frozenset[str] | None = None
    skus: frozenset[str] | None = None
    rate: Fraction | None = None
    multiplier: Fraction | None = None
    group: str = ""
    points: int = 0

    @property
    def order(self) -> tuple[int, int]:
        return (self.position, self.rule_id)

    @property
    def has_line_conditions(self) -> bool:
        return self.categories is not None or self.margin_classes is not None or self.skus is not None

    def purchase_matches(self, facts: PurchaseFacts) -> bool:
        if self.stores is not None and facts.store_id not in self.stores:
            return False
        if self.tiers is not None and facts.tier not in self.tiers:
            return False
        if self.min_amount_fen is not None and facts.amount_fen < self.min_amount_fen:
            return False
        local = facts.local
        if self.dates is not None and local.date() not in self.dates:
            return False
        if self.weekdays is not None and local.isoweekday() not in self.weekdays:
            return False
        if self.window is not None:
            start, end = self.window
            minute = local.hour * 60 + local.minute
            inside = start <= minute < end if start < end else (minute >= start or minute < end)
            if not inside:
                return False
        return True

    def line_matches(self, line: PurchaseLine) -> bool:
        # Several kinds of line condition: a line matches when it matches any of them.
        if not self.has_line_conditions:
            return True
        return (
            (self.categories is not None and line.category in self.categories)
            or (self.margin_classes is not None and line.margin_class in self.margin_classes)
            or (self.skus is not None and line.sku in self.skus)
        )


def compile_rule(
    rule_id: int, version: int, kind: EarnRuleKind, name: str, position: int, spec: Any
) -> CompiledRule:
    def opt(key: str, cast: Any = frozenset) -> Any:
        return cast(spec[key]) if key in spec else None

    rate = spec.get("rate")
    mult = spec.get("multiplier")
    return CompiledRule(
        rule_id=rule_id,
        version=version,
        kind=EarnRuleKind(kind),
        name=name,
        position=position,
        spec=spec,
        stop=bool(spec.get("stop")),
        stores=opt("stores"),
        tiers=opt("tiers"),
        dates=frozenset(date.fromisoformat(d) for d in spec["dates"]) if "dates" in spec else None,
        weekdays=opt("weekdays"),
        window=(_minutes(spec["timeFrom"]), _minutes(spec["timeTo"])) if "timeFrom" in spec else None,
        min_amount_fen=spec.get("minAmountFen") if kind is not K.MINIMUM_BILL else None,
        categories=opt("categories"),
        margin_classes=opt("marginClasses"),
        skus=opt("skus"),
        rate=Fraction(rate[0], rate[1]) if rate else None,
        multiplier=Fraction(mult[0], mult[1]) if mult else None,
        group=spec.get("group", ""),
        points=int(spec.get("points", 0)),
    )


@dataclass(frozen=True)
class RuleSet:
    """The rules in force at one time, sorted and split by the phase they act in."""

    rules: tuple[CompiledRule, ...]
    base: tuple[CompiledRule, ...] = ()
    line: tuple[CompiledRule, ...] = ()
    minimum_bills: tuple[CompiledRule, ...] = ()
    purchase_caps: tuple[CompiledRule, ...] = ()
    daily_caps: tuple[CompiledRule, ...] = ()
    bonuses: tuple[CompiledRule, ...] = ()
    referral: CompiledRule | None = None

    @classmethod
    def of(cls, rules: Sequence[CompiledRule]) -> RuleSet:
        ordered = tuple(sorted(rules, key=lambda r: r.order))

        def kinds(*wanted: EarnRuleKind) -> tuple[CompiledRule, ...]:
            return tuple(r for r in ordered if r.kind in wanted)

        referrals = kinds(K.REFERRAL)
        return cls(
            rules=ordered,
            base=kinds(K.BASE_RATE),
            line=kinds(K.CATEGORY_RATE, K.MULTIPLIER),
            minimum_bills=kinds(K.MINIMUM_BILL),
            purchase_caps=kinds(K.PURCHASE_CAP),
            daily_caps=kinds(K.DAILY_CAP),
            bonuses=kinds(K.FIRST_PURCHASE_BONUS, K.BIRTHDAY_BONUS),
            referral=referrals[0] if referrals else None,
        )


EMPTY = RuleSet(())


@dataclass(frozen=True, slots=True)
class StoredVersion:
    """One row of ``earn_rule_version`` with its rule's kind, as loaded for a rule book."""

    rule_id: int
    kind: EarnRuleKind
    version: int
    effective_from: datetime
    active: bool
    name: str
    position: int
    spec: Mapping[str, Any]


class RuleBook:
    """Every version of a brand's rules, compiled once: which rules are in force at any time.

    The times at which some version takes effect cut time into segments; each segment's rule set is
    computed when the book is built, so looking one up is a binary search.
    """

    def __init__(self, version: int, rows: Sequence[StoredVersion]) -> None:
        self.version = version
        by_rule: dict[int, list[StoredVersion]] = {}
        for row in rows:
            by_rule.setdefault(row.rule_id, []).append(row)
        for versions in by_rule.values():
            versions.sort(key=lambda r: (r.effective_from, r.version))
        self._starts: list[datetime] = sorted({row.effective_from for row in rows})
        self._sets: list[RuleSet] = []
        for start in self._starts:
            current = []
            for versions in by_rule.values():
                latest = None
                for row in versions:
                    if row.effective_from <= start:
                        latest = row
                if latest is not None and latest.active:
                    current.append(
                        compile_rule(
                            latest.rule_id,
                            latest.version,
                            latest.kind,
                            latest.name,
                            latest.position,
                            latest.spec,
                        )
                    )
            self._sets.append(RuleSet.of(current))

    def at(self, moment: datetime) -> RuleSet:
        i = bisect.bisect_right(self._starts, moment) - 1
        return self._sets[i] if i >= 0 else EMPTY


# --- evaluation -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PurchaseFacts:
    """What the evaluation needs to know about one purchase."""

    membership_id: int
    amount_fen: int  # what earns: the cash paid (at most the bill)
    lines: tuple[PurchaseLine, ...]  # the bill's lines with their earning amounts (they add up to amount_fen)
    store_id: int | None
    tier: str
    local: datetime  # the purchase's time in the brand's time zone
    first_purchase: bool  # the membership has no purchase recorded yet
    birthday: date | None = None
    # The guards' counters as read, or None to assume they are untouched (the submitter evaluates
    # again with the read values when a guard refuses: the common case costs no read).
    counters: Mapping[str, int] | None = None


@dataclass(frozen=True, slots=True)
class BreakdownEntry:
    """What one rule (or the brand's own earn rate: no rule id) contributed to a purchase."""

    rule_id: int | None
    version: int | None
    kind: EarnRuleKind
    name: str
    points: int
    detail: str

    def to_json(self) -> dict[str, Any]:
        return {
            "ruleId": self.rule_id,
            "version": self.version,
            "kind": self.kind.value,
            "name": self.name,
            "points": self.points,
            "detail": self.detail,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> BreakdownEntry:
        return cls(
            data.get("ruleId"),
            data.get("version"),
            EarnRuleKind(data["kind"]),
            str(data.get("name", "")),
            int(data["points"]),
            str(data.get("detail", "")),
        )


@dataclass(frozen=True)
class Evaluation:
    points: int
    breakdown: tuple[BreakdownEntry, ...]
    guards: tuple[Guard, ...] = ()
    counter_keys: tuple[str, ...] = ()  # every counter the evaluation depends on (read them to retry)


@dataclass(frozen=True, slots=True)
class BrandRate:
    """The brand's own ``earnRate``: the base when no BASE_RATE rule is in force."""

    points: int
    unit_fen: int


def daily_key(membership_id: int, day: date) -> str:
    return f"earn:day:m{membership_id}:{day:%Y%m%d}"


def first_purchase_key(membership_id: int) -> str:
    return f"earn:first:m{membership_id}"


def birthday_key(membership_id: int, year: int) -> str:
    return f"earn:birthday:m{membership_id}:{year}"


def local_time(moment: datetime, timezone: str) -> datetime:
    return moment.astimezone(ZoneInfo(timezone))


def eligible_lines(lines: Sequence[PurchaseLine], amount_fen: int) -> tuple[PurchaseLine, ...]:
    """The lines' earning amounts: their own, or scaled to ``amount_fen`` when less was paid in cash.

    Scaling is exact and adds up: each line gets ``floor(line x amount / bill)`` and the fen left over
    go one each to the lines with the largest remainders (the earlier line on a tie).
    """
    if not lines:
        return (PurchaseLine(amount_fen),)
    bill = sum(line.amount_fen for line in lines)
    if bill == amount_fen:
        return tuple(lines)
    shares = [(line.amount_fen * amount_fen // bill, line.amount_fen * amount_fen % bill) for line in lines]
    left = amount_fen - sum(share for share, _ in shares)
    bonus = set(sorted(range(len(lines)), key=lambda i: (-shares[i][1], i))[:left])
    return tuple(
        PurchaseLine(shares[i][0] + (1 if i in bonus else 0), line.category, line.margin_class, line.sku)
        for i, line in enumerate(lines)
    )


def _fraction_text(value: Fraction) -> str:
    return str(value.numerator) if value.denominator == 1 else f"{value.numerator}/{value.denominator}"


class _Tally:
    """Points per contributing rule, kept in the order the breakdown shows them."""

    PHASES: ClassVar[dict[EarnRuleKind, int]] = {
        K.BASE_RATE: 0,
        K.CATEGORY_RATE: 1,
        K.MULTIPLIER: 2,
        K.MINIMUM_BILL: 3,
        K.PURCHASE_CAP: 4,
        K.DAILY_CAP: 5,
        K.FIRST_PURCHASE_BONUS: 6,
        K.BIRTHDAY_BONUS: 6,
    }

    def __init__(self) -> None:
        self.points: dict[tuple[int, tuple[int, int]], int] = {}
        self.lines: dict[tuple[int, tuple[int, int]], int] = {}
        self.fen: dict[tuple[int, tuple[int, int]], int] = {}
        self.rules: dict[tuple[int, tuple[int, int]], tuple[CompiledRule | None, str]] = {}

    def add(
        self, rule: CompiledRule | None, kind: EarnRuleKind, points: int, fen: int, detail: str = ""
    ) -> None:
        key = (self.PHASES[kind], rule.order if rule else (-1, -1))
        self.points[key] = self.points.get(key, 0) + points
        self.lines[key] = self.lines.get(key, 0) + 1
        self.fen[key] = self.fen.get(key, 0) + fen
        self.rules.setdefault(key, (rule, detail))

    def entries(self, brand: BrandRate) -> tuple[BreakdownEntry, ...]:
        out = []
        for key in sorted(self.points):
            rule, detail = self.rules[key]
            lines, fen = self.lines[key], self.fen[key]
            plural = "line" if lines == 1 else "lines"
            if rule is None:
                text = f"{brand.points} per {brand.unit_fen} fen on {fen} fen"
                out.append(BreakdownEntry(None, None, K.BASE_RATE, "Brand earn rate", self.points[key], text))
                continue
            if rule.kind in (K.BASE_RATE, K.CATEGORY_RATE):
                assert rule.rate is not None
                text = f"{rule.spec['rate'][0]} per {rule.spec['rate'][1]} fen on {fen} fen"
            elif rule.kind is K.MULTIPLIER:
                assert rule.multiplier is not None
                text = f"x{_fraction_text(rule.multiplier)} on {lines} {plural} ({fen} fen)"
            else:
                text = detail
            out.append(
                BreakdownEntry(rule.rule_id, rule.version, rule.kind, rule.name, self.points[key], text)
            )
        return tuple(out)


def evaluate(rules: RuleSet, brand: BrandRate, facts: PurchaseFacts) -> Evaluation:
    """The points a purchase earns under ``rules``, with the breakdown that adds up to them."""
    tally = _Tally()
    matched = {r.rule_id: r.purchase_matches(facts) for r in rules.rules}
    # 1. The base rate: the store's own rule, else a brand-wide rule, else the brand's earn rate.
    base: CompiledRule | None = None
    for rule in rules.base:
        if rule.stores is not None and facts.store_id in rule.stores:
            base = rule
            break
    if base is None:
        base = next((r for r in rules.base if r.stores is None), None)
    brand_rate = Fraction(brand.points, brand.unit_fen)
    line_rules = () if base is not None and base.stop else tuple(r for r in rules.line if matched[r.rule_id])
    # 2 and 3. Each line: its rate, the winning multiplier of each group, rounded down once.
    rate_points = 0
    for line in facts.lines:
        rate_rule: CompiledRule | None = None
        winners: dict[str, CompiledRule] = {}
        for rule in line_rules:
            if not rule.line_matches(line):
                continue
            if rule.kind is K.CATEGORY_RATE:
                rate_rule = rate_rule or rule
            else:
                assert rule.multiplier is not None
                current = winners.get(rule.group)
                if current is None or rule.multiplier > current.multiplier:  # type: ignore[operator]
                    winners[rule.group] = rule
            if rule.stop:
                break
        source = rate_rule or base
        exact = line.amount_fen * (
            source.rate if source is not None and source.rate is not None else brand_rate
        )
        running = exact.numerator // exact.denominator
        kind = source.kind if source is not None else K.BASE_RATE
        tally.add(source, kind, running, line.amount_fen)
        for rule in sorted(winners.values(), key=lambda r: r.order):
            exact *= rule.multiplier  # type: ignore[operator]
            floor = exact.numerator // exact.denominator
            tally.add(rule, K.MULTIPLIER, floor - running, line.amount_fen)
            running = floor
        rate_points += running
    # 4. Limits on the lines' sum: minimum bill, the smallest purchase cap, the daily cap.
    for rule in rules.minimum_bills:
        if matched[rule.rule_id] and facts.amount_fen < int(rule.spec["minAmountFen"]) and rate_points:
            tally.add(
                rule,
                K.MINIMUM_BILL,
                -rate_points,
                0,
                f"below the minimum bill of {rule.spec['minAmountFen']} fen",
            )
            rate_points = 0
    caps = [r for r in rules.purchase_caps if matched[r.rule_id]]
    if caps:
        cap = min(caps, key=lambda r: (r.points, r.order))
        if rate_points > cap.points:
            tally.add(cap, K.PURCHASE_CAP, cap.points - rate_points, 0, f"at most {cap.points} per purchase")
            rate_points = cap.points
    guards: list[Guard] = []
    keys: list[str] = []
    counters = facts.counters or {}
    if rules.daily_caps:
        daily = min(rules.daily_caps, key=lambda r: (r.points, r.order))
        key = daily_key(facts.membership_id, facts.local.date())
        keys.append(key)
        used = counters.get(key, 0)
        allowed = max(0, daily.points - used)
        if rate_points > allowed:
            text = f"at most {daily.points} per day ({used} earned earlier that day)"
            tally.add(daily, K.DAILY_CAP, allowed - rate_points, 0, text)
            rate_points = allowed
        if rate_points:
            guards.append(_guard(key, rate_points, daily.points))
    # 5. Bonuses add.
    bonus_points = 0
    seen: set[EarnRuleKind] = set()
    for rule in rules.bonuses:
        if not matched[rule.rule_id] or rule.kind in seen:
            continue
        if rule.kind is K.FIRST_PURCHASE_BONUS:
            if not facts.first_purchase:
                continue
            key, text = first_purchase_key(facts.membership_id), "first purchase"
        else:
            if not _birthday_matches(rule, facts):
                continue
            key = birthday_key(facts.membership_id, facts.local.year)
            text = f"birthday {rule.spec['birthday']}, once in {facts.local.year}"
        keys.append(key)
        if counters.get(key, 0) >= 1:
            continue
        seen.add(rule.kind)
        guards.append(_guard(key, 1, 1))
        tally.add(rule, rule.kind, rule.points, 0, text)
        bonus_points += rule.points
        if rule.stop:
            break
    return Evaluation(rate_points + bonus_points, tally.entries(brand), tuple(guards), tuple(keys))


def _birthday_matches(rule: CompiledRule, facts: PurchaseFacts) -> bool:
    born = facts.birthday
    if born is None:
        return False
    today = facts.local.date()
    if today.month != born.month:
        return False
    if rule.spec["birthday"] == BirthdayWindow.MONTH.value:
        return True
    if born.month == 2 and born.day == 29 and not _leap(today.year):
        return today.day == 28  # a 29 February birthday is kept on the 28th in other years
    return today.day == born.day


def _leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def _guard(key: str, delta: int, maximum: int) -> Guard:
    return Guard(
        key,
        delta=delta,
        maximum=maximum,
        code=ErrorCode.LIMIT_REACHED,
        message="An earning limit moved meanwhile; the purchase is evaluated again.",
        field=EARN_GUARD_FIELD,
    )


@dataclass(frozen=True)
class ReferralTerms:
    """The brand's referral rule in force at a purchase."""

    rule_id: int
    version: int
    referrer_points: int
    referee_points: int
    min_amount_fen: int | None
    max_per_referrer: int | None = field(default=None)

    @classmethod
    def of(cls, rule: CompiledRule) -> ReferralTerms:
        return cls(
            rule.rule_id,
            rule.version,
            int(rule.spec.get("referrerPoints", 0)),
            int(rule.spec.get("refereePoints", 0)),
            rule.spec.get("minAmountFen"),
            rule.spec.get("maxPerReferrer"),
        )
