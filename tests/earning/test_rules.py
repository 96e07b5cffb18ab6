"""The rule semantics, table-driven, on the pure evaluator (docs/earning.md, "How rules stack").

Every case states the rules, the purchase, the points and the breakdown, and every case checks that the
breakdown adds up to the points exactly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.domain import BirthdayWindow, EarnRuleKind
from hub.errors import InvalidInput
from hub.resolvers.earn_rules import (
    BrandRate,
    CompiledRule,
    PurchaseFacts,
    PurchaseLine,
    RuleBook,
    RuleInput,
    RuleSet,
    StoredVersion,
    birthday_key,
    compile_rule,
    daily_key,
    eligible_lines,
    evaluate,
    first_purchase_key,
    local_time,
    validate,
)

K = EarnRuleKind
BRAND = BrandRate(1, 100)  # 1 point per ¥1
MID = 7


def rule(rule_id: int, kind: EarnRuleKind, position: int = 0, **fields: Any) -> CompiledRule:
    spec = validate(kind, RuleInput(name=f"r{rule_id}", position=position, **fields))
    return compile_rule(rule_id, 1, kind, f"r{rule_id}", position, spec)


def at(text: str, zone: str = "Asia/Shanghai") -> datetime:
    """A UTC instant (``...Z``) seen in ``zone``."""
    return local_time(datetime.fromisoformat(text.replace("Z", "+00:00")), zone)


TUESDAY_NOON = at("2026-11-10T04:00:00Z")  # 12:00 in Shanghai, a Tuesday


@dataclass
class Case:
    rules: list[CompiledRule]
    points: int
    breakdown: list[tuple[int | None, int]]  # (rule id, points), in the order shown
    amount: int = 12_999
    lines: tuple[PurchaseLine, ...] = ()
    store: int | None = 1
    tier: str = "normal"
    local: datetime = TUESDAY_NOON
    first: bool = False
    birthday: date | None = None
    counters: dict[str, int] | None = None
    guards: list[tuple[str, int, int | None]] = field(default_factory=list)  # (key, delta, maximum)


FRESH, TOBACCO = PurchaseLine(5_000, "fresh"), PurchaseLine(3_000, "tobacco")
HOUSE = PurchaseLine(2_000, "grocery", "house")
BILL = (FRESH, TOBACCO, HOUSE)  # 10,000 fen

CASES: dict[str, Case] = {
    # --- base rate -------------------------------------------------------------------------------
    "brand rate, rounded down": Case([], 129, [(None, 129)]),
    "brand-wide BASE_RATE replaces the brand rate": Case(
        [rule(1, K.BASE_RATE, rate_points=2, rate_unit_fen=100)], 259, [(1, 259)]
    ),
    "a store's BASE_RATE beats the brand-wide one whatever the order": Case(
        [
            rule(1, K.BASE_RATE, position=0, rate_points=2, rate_unit_fen=100),
            rule(2, K.BASE_RATE, position=5, rate_points=5, rate_unit_fen=100, stores=(3,)),
        ],
        649,
        [(2, 649)],
        store=3,
    ),
    "another store's BASE_RATE does not apply": Case(
        [rule(2, K.BASE_RATE, rate_points=5, rate_unit_fen=100, stores=(3,))], 129, [(None, 129)], store=1
    ),
    # --- categories and margin classes -----------------------------------------------------------
    "category rates replace the base per line; tobacco earns none": Case(
        [
            rule(1, K.CATEGORY_RATE, rate_points=2, rate_unit_fen=100, categories=("fresh",)),
            rule(2, K.CATEGORY_RATE, rate_points=0, rate_unit_fen=100, categories=("tobacco",)),
        ],
        120,  # fresh 100 + tobacco 0 + house line at the brand rate 20
        [(None, 20), (1, 100), (2, 0)],
        amount=10_000,
        lines=BILL,
    ),
    "the first matching category rate wins": Case(
        [
            rule(1, K.CATEGORY_RATE, position=2, rate_points=3, rate_unit_fen=100, categories=("fresh",)),
            rule(2, K.CATEGORY_RATE, position=1, rate_points=2, rate_unit_fen=100, categories=("fresh",)),
        ],
        100,
        [(2, 100)],
        amount=5_000,
        lines=(FRESH,),
    ),
    "margin class x3 on house brands": Case(
        [rule(1, K.MULTIPLIER, multiplier_numerator=3, multiplier_denominator=1, margin_classes=("house",))],
        140,  # 50 + 30 + 20 x 3
        [(None, 100), (1, 40)],
        amount=10_000,
        lines=BILL,
    ),
    # --- multipliers and groups ------------------------------------------------------------------
    "in one group the highest multiplier applies": Case(
        [
            rule(1, K.MULTIPLIER, multiplier_numerator=2, multiplier_denominator=1, group="promo"),
            rule(2, K.MULTIPLIER, multiplier_numerator=3, multiplier_denominator=1, group="promo"),
        ],
        300,
        [(None, 100), (2, 200)],
        amount=10_000,
    ),
    "groups multiply": Case(
        [
            rule(1, K.MULTIPLIER, multiplier_numerator=2, multiplier_denominator=1, group="promo"),
            rule(2, K.MULTIPLIER, multiplier_numerator=3, multiplier_denominator=2, group="tier"),
        ],
        300,  # 100 x 2 x 1.5
        [(None, 100), (1, 100), (2, 100)],
        amount=10_000,
    ),
    "a matching rule with stop ends the walk for its line": Case(
        [
            rule(1, K.MULTIPLIER, position=1, multiplier_numerator=2, multiplier_denominator=1, group="a"),
            rule(
                2,
                K.CATEGORY_RATE,
                position=2,
                rate_points=0,
                rate_unit_fen=100,
                categories=("tobacco",),
                stop=True,
            ),
            rule(3, K.MULTIPLIER, position=3, multiplier_numerator=5, multiplier_denominator=1, group="b"),
        ],
        # fresh and house: brand rate x2 x5 = 700; tobacco: rate 0 (x2 before the stop), no x5.
        700,
        [(None, 70), (2, 0), (1, 70), (3, 560)],
        amount=10_000,
        lines=BILL,
    ),
    "a base rate with stop: no line rule applies": Case(
        [
            rule(1, K.BASE_RATE, rate_points=1, rate_unit_fen=100, stop=True),
            rule(2, K.MULTIPLIER, multiplier_numerator=2, multiplier_denominator=1),
        ],
        100,
        [(1, 100)],
        amount=10_000,
    ),
    # --- rounding: down, once per line; the breakdown telescopes ---------------------------------
    "rounding is per line": Case(
        [], 2, [(None, 2)], amount=300, lines=(PurchaseLine(150, "a"), PurchaseLine(150, "b"))
    ),
    "a multiplier gets what it adds to the running floor": Case(
        [rule(1, K.MULTIPLIER, multiplier_numerator=3, multiplier_denominator=2)],
        4,  # floor(3.33 x 1.5) = floor(4.995)
        [(None, 3), (1, 1)],
        amount=333,
    ),
    # --- time windows in the brand's zone --------------------------------------------------------
    "Tuesday afternoon x1.5 at 15:00 Shanghai": Case(
        [
            rule(
                1,
                K.MULTIPLIER,
                multiplier_numerator=3,
                multiplier_denominator=2,
                weekdays=(2,),
                time_from="13:00",
                time_to="18:00",
            )
        ],
        150,
        [(None, 100), (1, 50)],
        amount=10_000,
        local=at("2026-11-10T07:00:00Z"),
    ),
    "Tuesday afternoon x1.5 not at 18:00 (the end is excluded)": Case(
        [
            rule(
                1,
                K.MULTIPLIER,
                multiplier_numerator=3,
                multiplier_denominator=2,
                weekdays=(2,),
                time_from="13:00",
                time_to="18:00",
            )
        ],
        100,
        [(None, 100)],
        amount=10_000,
        local=at("2026-11-10T10:00:00Z"),
    ),
    "Tuesday 23:59:59 in Shanghai is 15:59:59 UTC": Case(
        [rule(1, K.MULTIPLIER, multiplier_numerator=2, multiplier_denominator=1, weekdays=(2,))],
        200,
        [(None, 100), (1, 100)],
        amount=10_000,
        local=at("2026-11-10T15:59:59Z"),
    ),
    "16:00 UTC on Tuesday is already Wednesday in Shanghai": Case(
        [rule(1, K.MULTIPLIER, multiplier_numerator=2, multiplier_denominator=1, weekdays=(2,))],
        100,
        [(None, 100)],
        amount=10_000,
        local=at("2026-11-10T16:00:00Z"),
    ),
    "National Day x2 starts at local midnight (16:00 UTC the day before)": Case(
        [rule(1, K.MULTIPLIER, multiplier_numerator=2, multiplier_denominator=1, dates=(date(2026, 10, 1),))],
        200,
        [(None, 100), (1, 100)],
        amount=10_000,
        local=at("2026-09-30T16:00:00Z"),
    ),
    "a night window spans midnight": Case(
        [
            rule(
                1,
                K.MULTIPLIER,
                multiplier_numerator=2,
                multiplier_denominator=1,
                time_from="22:00",
                time_to="02:00",
            )
        ],
        200,
        [(None, 100), (1, 100)],
        amount=10_000,
        local=at("2026-11-10T17:30:00Z"),  # 01:30 local
    ),
    # Europe/Berlin: summer time starts 2026-03-29 at 02:00 (clocks jump to 03:00) and ends 2026-10-25.
    "DST: 00:59 UTC on 29 March is 01:59 CET, inside 01:00-02:00": Case(
        [
            rule(
                1,
                K.MULTIPLIER,
                multiplier_numerator=2,
                multiplier_denominator=1,
                time_from="01:00",
                time_to="02:00",
            )
        ],
        200,
        [(None, 100), (1, 100)],
        amount=10_000,
        local=at("2026-03-29T00:59:00Z", "Europe/Berlin"),
    ),
    "DST: one minute later it is 03:00 CEST, the skipped hour never matches": Case(
        [
            rule(
                1,
                K.MULTIPLIER,
                multiplier_numerator=2,
                multiplier_denominator=1,
                time_from="02:00",
                time_to="03:00",
            )
        ],
        100,
        [(None, 100)],
        amount=10_000,
        local=at("2026-03-29T01:00:00Z", "Europe/Berlin"),
    ),
    "DST: local midnight of 25 October is 22:00 UTC (CEST, +2)": Case(
        [
            rule(
                1, K.MULTIPLIER, multiplier_numerator=2, multiplier_denominator=1, dates=(date(2026, 10, 25),)
            )
        ],
        200,
        [(None, 100), (1, 100)],
        amount=10_000,
        local=at("2026-10-24T22:00:00Z", "Europe/Berlin"),
    ),
    "DST: after the change local midnight is 23:00 UTC (CET, +1)": Case(
        [
            rule(
                1, K.MULTIPLIER, multiplier_numerator=2, multiplier_denominator=1, dates=(date(2026, 10, 25),)
            )
        ],
        100,
        [(None, 100)],
        amount=10_000,
        local=at("2026-10-25T23:00:00Z", "Europe/Berlin"),  # 26 October, 00:00 CET
    ),
    # --- tiers, stores, minimum bill, caps -------------------------------------------------------
    "a tier multiplier applies to its tier": Case(
        [
            rule(
                1,
                K.MULTIPLIER,
                multiplier_numerator=2,
                multiplier_denominator=1,
                tiers=("gold",),
                group="tier",
            )
        ],
        200,
        [(None, 100), (1, 100)],
        amount=10_000,
        tier="gold",
    ),
    "and not to another": Case(
        [
            rule(
                1,
                K.MULTIPLIER,
                multiplier_numerator=2,
                multiplier_denominator=1,
                tiers=("gold",),
                group="tier",
            )
        ],
        100,
        [(None, 100)],
        amount=10_000,
        tier="silver",
    ),
    "a multiplier with a minimum bill applies from it on": Case(
        [rule(1, K.MULTIPLIER, multiplier_numerator=2, multiplier_denominator=1, min_amount_fen=10_000)],
        200,
        [(None, 100), (1, 100)],
        amount=10_000,
    ),
    "below the minimum bill no rate points": Case(
        [rule(1, K.MINIMUM_BILL, min_amount_fen=5_000)], 0, [(None, 49), (1, -49)], amount=4_999
    ),
    "at the minimum bill": Case(
        [rule(1, K.MINIMUM_BILL, min_amount_fen=5_000)], 50, [(None, 50)], amount=5_000
    ),
    "the smallest purchase cap applies, after multipliers": Case(
        [
            rule(1, K.MULTIPLIER, multiplier_numerator=10, multiplier_denominator=1),
            rule(2, K.PURCHASE_CAP, points=800),
            rule(3, K.PURCHASE_CAP, points=500),
        ],
        500,
        [(None, 100), (1, 900), (3, -500)],
        amount=10_000,
    ),
    "a daily cap assumes nothing used (the guard checks)": Case(
        [rule(1, K.DAILY_CAP, points=60)],
        60,
        [(None, 100), (1, -40)],
        amount=10_000,
        guards=[(daily_key(MID, date(2026, 11, 10)), 60, 60)],
    ),
    "a daily cap with 50 used earlier that day": Case(
        [rule(1, K.DAILY_CAP, points=60)],
        10,
        [(None, 100), (1, -90)],
        amount=10_000,
        counters={daily_key(MID, date(2026, 11, 10)): 50},
        guards=[(daily_key(MID, date(2026, 11, 10)), 10, 60)],
    ),
    "the daily cap's day is the brand-local day": Case(
        [rule(1, K.DAILY_CAP, points=60)],
        60,
        [(None, 100), (1, -40)],
        amount=10_000,
        local=at("2026-11-10T16:30:00Z"),  # 00:30 on 11 November in Shanghai
        counters={daily_key(MID, date(2026, 11, 10)): 60},
        guards=[(daily_key(MID, date(2026, 11, 11)), 60, 60)],
    ),
    # --- bonuses add, after caps -----------------------------------------------------------------
    "a first purchase bonus adds after the cap": Case(
        [rule(1, K.PURCHASE_CAP, points=50), rule(2, K.FIRST_PURCHASE_BONUS, points=200)],
        250,
        [(None, 100), (1, -50), (2, 200)],
        amount=10_000,
        first=True,
        guards=[(first_purchase_key(MID), 1, 1)],
    ),
    "no first purchase bonus on a later purchase": Case(
        [rule(2, K.FIRST_PURCHASE_BONUS, points=200)], 100, [(None, 100)], amount=10_000, first=False
    ),
    "no first purchase bonus once its counter is taken": Case(
        [rule(2, K.FIRST_PURCHASE_BONUS, points=200)],
        100,
        [(None, 100)],
        amount=10_000,
        first=True,
        counters={first_purchase_key(MID): 1},
    ),
    "a first purchase bonus with a minimum bill": Case(
        [rule(2, K.FIRST_PURCHASE_BONUS, points=200, min_amount_fen=20_000)],
        100,
        [(None, 100)],
        amount=10_000,
        first=True,
    ),
    "birthday bonus on the day (brand-local)": Case(
        [rule(1, K.BIRTHDAY_BONUS, points=88, birthday=BirthdayWindow.DAY)],
        188,
        [(None, 100), (1, 88)],
        amount=10_000,
        local=at("2026-05-16T16:00:00Z"),  # 17 May, 00:00 in Shanghai
        birthday=date(1990, 5, 17),
        guards=[(birthday_key(MID, 2026), 1, 1)],
    ),
    "no birthday bonus the day before": Case(
        [rule(1, K.BIRTHDAY_BONUS, points=88, birthday=BirthdayWindow.DAY)],
        100,
        [(None, 100)],
        amount=10_000,
        local=at("2026-05-16T15:59:00Z"),
        birthday=date(1990, 5, 17),
    ),
    "birthday month bonus, once a year": Case(
        [rule(1, K.BIRTHDAY_BONUS, points=88, birthday=BirthdayWindow.MONTH)],
        100,
        [(None, 100)],
        amount=10_000,
        local=at("2026-05-01T04:00:00Z"),
        birthday=date(1990, 5, 17),
        counters={birthday_key(MID, 2026): 1},
    ),
    "a 29 February birthday is kept on the 28th in other years": Case(
        [rule(1, K.BIRTHDAY_BONUS, points=88, birthday=BirthdayWindow.DAY)],
        188,
        [(None, 100), (1, 88)],
        amount=10_000,
        local=at("2027-02-28T04:00:00Z"),
        birthday=date(2000, 2, 29),
        guards=[(birthday_key(MID, 2027), 1, 1)],
    ),
    "a bonus with stop ends the bonuses after it": Case(
        [
            rule(1, K.FIRST_PURCHASE_BONUS, position=1, points=200, stop=True),
            rule(2, K.BIRTHDAY_BONUS, position=2, points=88, birthday=BirthdayWindow.MONTH),
        ],
        300,
        [(None, 100), (1, 200)],
        amount=10_000,
        first=True,
        local=at("2026-05-01T04:00:00Z"),
        birthday=date(1990, 5, 17),
        guards=[(first_purchase_key(MID), 1, 1)],
    ),
    "stop does not reach caps": Case(
        [
            rule(1, K.MULTIPLIER, position=1, multiplier_numerator=2, multiplier_denominator=1, stop=True),
            rule(2, K.PURCHASE_CAP, position=2, points=150),
        ],
        150,
        [(None, 100), (1, 100), (2, -50)],
        amount=10_000,
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_rule_semantics(name: str) -> None:
    case = CASES[name]
    facts = PurchaseFacts(
        membership_id=MID,
        amount_fen=case.amount,
        lines=eligible_lines(case.lines, case.amount),
        store_id=case.store,
        tier=case.tier,
        local=case.local,
        first_purchase=case.first,
        birthday=case.birthday,
        counters=case.counters,
    )
    result = evaluate(RuleSet.of(case.rules), BRAND, facts)
    assert result.points == case.points
    assert [(e.rule_id, e.points) for e in result.breakdown] == case.breakdown
    assert sum(e.points for e in result.breakdown) == result.points
    assert [(g.key, g.delta, g.maximum) for g in result.guards] == case.guards


def test_scaled_lines_add_up_exactly() -> None:
    assert eligible_lines((PurchaseLine(1_000), PurchaseLine(2_000)), 1_500) == (
        PurchaseLine(500),
        PurchaseLine(1_000),
    )
    # 2 fen over three equal lines: the earlier lines get the remainders.
    assert [x.amount_fen for x in eligible_lines((PurchaseLine(1),) * 3, 2)] == [1, 1, 0]
    assert eligible_lines((), 999) == (PurchaseLine(999),)


@settings(max_examples=200, deadline=None)
@given(
    amounts=st.lists(st.integers(1, 10**7), min_size=1, max_size=6),
    paid_share=st.fractions(0, 1),
    multipliers=st.lists(st.tuples(st.integers(0, 40), st.integers(1, 9), st.sampled_from("ab")), max_size=4),
    cap=st.none() | st.integers(0, 10**6),
    rate=st.tuples(st.integers(0, 50), st.integers(50, 1000)),
)
def test_the_breakdown_always_adds_up(
    amounts: list[int],
    paid_share: Any,
    multipliers: list[tuple[int, int, str]],
    cap: int | None,
    rate: tuple[int, int],
) -> None:
    lines = tuple(PurchaseLine(a, "c" if i % 2 else "d") for i, a in enumerate(amounts))
    paid = max(1, int(sum(amounts) * paid_share))
    rules = [rule(1, K.CATEGORY_RATE, rate_points=rate[0], rate_unit_fen=rate[1], categories=("c",))]
    rules += [
        rule(10 + i, K.MULTIPLIER, position=i, multiplier_numerator=n, multiplier_denominator=d, group=g)
        for i, (n, d, g) in enumerate(multipliers)
    ]
    if cap is not None:
        rules.append(rule(99, K.PURCHASE_CAP, points=cap))
    facts = PurchaseFacts(MID, paid, eligible_lines(lines, paid), 1, "normal", TUESDAY_NOON, False)
    result = evaluate(RuleSet.of(rules), BRAND, facts)
    assert sum(e.points for e in result.breakdown) == result.points >= 0
    assert sum(x.amount_fen for x in facts.lines) == paid
    if cap is not None:
        assert result.points <= cap


def _version(rule_id: int, version: int, when: str, active: bool = True, numerator: int = 2) -> StoredVersion:
    spec = validate(
        K.MULTIPLIER, RuleInput(name="x", multiplier_numerator=numerator, multiplier_denominator=1)
    )
    moment = datetime.fromisoformat(when).replace(tzinfo=UTC)
    return StoredVersion(rule_id, K.MULTIPLIER, version, moment, active, f"v{version}", 0, spec)


def test_a_rule_book_answers_the_versions_in_force_at_any_time() -> None:
    book = RuleBook(
        3,
        [
            _version(1, 1, "2026-01-01T00:00:00", numerator=2),
            _version(1, 2, "2026-06-01T00:00:00", numerator=3),
            _version(1, 3, "2026-09-01T00:00:00", active=False),
            _version(2, 1, "2026-03-01T00:00:00", numerator=5),
        ],
    )

    def versions(when: str) -> list[tuple[int, int]]:
        return [
            (r.rule_id, r.version) for r in book.at(datetime.fromisoformat(when).replace(tzinfo=UTC)).rules
        ]

    assert versions("2025-12-31T23:59:59") == []
    assert versions("2026-01-01T00:00:00") == [(1, 1)]
    assert versions("2026-05-31T23:59:59") == [(1, 1), (2, 1)]
    assert versions("2026-06-01T00:00:00") == [(1, 2), (2, 1)]
    assert versions("2026-09-01T00:00:00") == [(2, 1)]  # rule 1 retired


@pytest.mark.parametrize(
    ("kind", "fields", "field"),
    [
        (K.MULTIPLIER, {}, "rule.multiplierNumerator"),
        (
            K.MULTIPLIER,
            {"multiplier_numerator": 3, "multiplier_denominator": 0},
            "rule.multiplierDenominator",
        ),
        (
            K.MULTIPLIER,
            {"multiplier_numerator": 101, "multiplier_denominator": 1},
            "rule.multiplierNumerator",
        ),
        (K.BASE_RATE, {"rate_points": 101, "rate_unit_fen": 100}, "rule.ratePoints"),
        (K.BASE_RATE, {"rate_points": 1, "rate_unit_fen": 100, "categories": ("x",)}, "rule.categories"),
        (K.CATEGORY_RATE, {"rate_points": 1, "rate_unit_fen": 100}, "rule.categories"),
        (
            K.MULTIPLIER,
            {"multiplier_numerator": 2, "multiplier_denominator": 1, "weekdays": (8,)},
            "rule.weekdays",
        ),
        (
            K.MULTIPLIER,
            {"multiplier_numerator": 2, "multiplier_denominator": 1, "time_from": "13:00"},
            "rule.timeTo",
        ),
        (
            K.MULTIPLIER,
            {
                "multiplier_numerator": 2,
                "multiplier_denominator": 1,
                "time_from": "25:00",
                "time_to": "26:00",
            },
            "rule.timeFrom",
        ),
        (
            K.MULTIPLIER,
            {"multiplier_numerator": 2, "multiplier_denominator": 1, "tiers": ("Gold!",)},
            "rule.tiers",
        ),
        (K.DAILY_CAP, {"points": 10, "stores": (1,)}, "rule.storeIds"),
        (K.BIRTHDAY_BONUS, {"points": 10}, "rule.birthday"),
        (K.FIRST_PURCHASE_BONUS, {"points": 0}, "rule.points"),
        (K.REFERRAL, {}, "rule.referrerPoints"),
        (K.MINIMUM_BILL, {"min_amount_fen": 0}, "rule.minAmountFen"),
    ],
)
def test_a_bad_rule_names_its_field(kind: EarnRuleKind, fields: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        validate(kind, RuleInput(name="bad", **fields))
    assert refused.value.field == field
