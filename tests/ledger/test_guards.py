"""Guards: counters a command moves in its own transaction, never past their bounds under concurrency."""

from __future__ import annotations

import asyncio
import dataclasses
from itertools import count

import pytest

from hub.errors import DomainError, ErrorCode
from hub.ledger import engine
from hub.ledger.audit import audit
from hub.ledger.commands import Command, CommandError, Guard, Outcome
from hub.ledger.engine import LedgerWriter, post
from hub.ledger.idempotency import IdempotencyClaim
from hub.models import LedgerCounter, LedgerTransaction
from tests.helpers import Api, World, make_world
from tests.ledger.test_engine import Member, balance, member

_n = count()


@pytest.fixture(scope="module")
async def world(api: Api) -> World:
    return await make_world(api)


def guarded(command: Command, *guards: Guard) -> Command:
    return dataclasses.replace(command, guards=guards)


def stock(name: str, delta: int = 1, maximum: int | None = 1) -> Guard:
    return Guard(f"stock:test:{name}", delta, maximum, code=ErrorCode.LIMIT_REACHED, message="Sold out.")


async def value(key: str) -> int | None:
    row = await LedgerCounter.get_or_none(key=key)
    return row.value if row else None


async def test_fifty_concurrent_commands_on_the_last_unit_exactly_one_commits(world: World) -> None:
    m = await member(world)
    await post([m.earn(1_000)])
    name = f"last-{next(_n)}"
    async with LedgerWriter() as writer:
        results = await writer.submit_many([guarded(m.redeem(10), stock(name)) for _ in range(50)])

    won = [r for r in results if isinstance(r, Outcome)]
    lost = [r for r in results if isinstance(r, DomainError)]
    assert len(won) == 1 and len(lost) == 49
    assert {e.code for e in lost} == {ErrorCode.LIMIT_REACHED}
    assert await value(f"stock:test:{name}") == 1
    assert await balance(m.points) == 990  # only the winner's points left
    assert (await audit(m.brand_id)).ok


async def test_concurrent_writers_share_one_counter(world: World) -> None:
    # Two writers (two processes' worth of group commit) race for 5 units with 20 commands each.
    m = await member(world)
    await post([m.earn(1_000)])
    name = f"shared-{next(_n)}"
    async with LedgerWriter() as one, LedgerWriter() as two:
        results = await asyncio.gather(
            one.submit_many([guarded(m.redeem(1), stock(name, maximum=5)) for _ in range(20)]),
            two.submit_many([guarded(m.redeem(1), stock(name, maximum=5)) for _ in range(20)]),
        )
    won = [r for batch in results for r in batch if isinstance(r, Outcome)]
    assert len(won) == 5
    assert await value(f"stock:test:{name}") == 5
    assert await balance(m.points) == 995


async def test_a_refused_guard_fails_its_command_alone_and_writes_nothing_of_it(world: World) -> None:
    m = await member(world)
    await post([m.earn(100)])
    name = f"alone-{next(_n)}"
    refused = guarded(m.redeem(5), stock(name, maximum=0))
    results = await post([m.earn(10), refused, guarded(m.redeem(1), stock(f"{name}-other"))])

    assert isinstance(results[0], Outcome) and isinstance(results[2], Outcome)
    assert isinstance(results[1], DomainError) and results[1].message == "Sold out."
    assert await LedgerTransaction.filter(idempotency_key=refused.claim.key).count() == 0
    assert await value(f"stock:test:{name}") == 0  # created at 0 and left there
    assert await value(f"stock:test:{name}-other") == 1
    assert await balance(m.points) == 109


async def test_a_failing_leg_gives_the_guard_back(world: World) -> None:
    # The guard fits but the member cannot pay: nothing of the command stays, the unit is not taken.
    m = await member(world)
    name = f"unpaid-{next(_n)}"
    results = await post([guarded(m.redeem(5), stock(name)), guarded(m.earn(3), stock(f"{name}-b"))])
    assert isinstance(results[0], DomainError) and results[0].code is ErrorCode.INSUFFICIENT_POINTS
    assert isinstance(results[1], Outcome)
    assert await value(f"stock:test:{name}") == 0


async def test_a_replay_moves_no_guard_and_a_cancellation_gives_back(world: World) -> None:
    m = await member(world)
    await post([m.earn(100)])
    name = f"replay-{next(_n)}"
    claim = IdempotencyClaim("guard-test", f"r{next(_n)}", "h")
    first = await post([guarded(m.redeem(5, claim), stock(name, maximum=2))])
    again = await post([guarded(m.redeem(5, claim), stock(name, maximum=2))])
    assert isinstance(again[0], Outcome) and again[0].replayed
    assert isinstance(first[0], Outcome) and again[0].transaction.id == first[0].transaction.id
    assert await value(f"stock:test:{name}") == 1

    cancel = guarded(m.earn(5), Guard(f"stock:test:{name}", -1))
    assert isinstance((await post([cancel]))[0], Outcome)
    assert await value(f"stock:test:{name}") == 0
    below = guarded(m.earn(5), Guard(f"stock:test:{name}", -1))  # minimum 0: cannot give back twice
    assert isinstance((await post([below]))[0], DomainError)


async def test_guards_are_checked_before_anything_is_written() -> None:
    m = Member(1, 1)
    for bad in (Guard("has space", 1), Guard("k", 0), Guard("", 1)):
        result = (await post([guarded(m.earn(1), bad)]))[0]
        assert isinstance(result, CommandError), bad
    twice = guarded(m.earn(1), Guard("same", 1), Guard("same", 1))
    assert isinstance((await post([twice]))[0], CommandError)


async def test_a_rolled_back_attempt_forgets_the_accounts_it_created(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The writer caches which accounts exist; an attempt that created one and then failed must not
    # leave it cached, or the next command naming it would find no row.
    m = await member(world)
    original = engine._plan  # runs after the batch created its accounts and counters
    failures = iter([RuntimeError("injected")])

    def fail_once(*args: object, **kwargs: object) -> object:
        error = next(failures, None)
        if error is not None:
            raise error
        return original(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(engine, "_plan", fail_once)
    name = f"new-{next(_n)}"  # a counter (and so a row) that did not exist before
    async with LedgerWriter() as writer:
        with pytest.raises(RuntimeError, match="injected"):
            await writer.submit(guarded(m.earn(7), stock(name)))
        outcome = await writer.submit(guarded(m.earn(7), stock(name)))
    assert outcome.report_balance == 7
    assert await value(f"stock:test:{name}") == 1
