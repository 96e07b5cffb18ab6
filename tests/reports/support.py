"""Shared pieces of the report tests: a clock for the ledger, a recomputation of reports from postings,
and a counter of SQL statements."""

from __future__ import annotations

import contextlib
import contextvars
import itertools
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from hub.ledger import engine
from hub.models import Account, LedgerTransaction, Posting
from tests.helpers import Api

_n = itertools.count()
_COUNTING: contextvars.ContextVar[bool] = contextvars.ContextVar("counting", default=False)

ACTIVITY = (
    "start end issued redeemed expired adjusted transactions purchases salesFen redemptionRate"
    " issuedByKind { kind points } redeemedByKind { kind points } store { id }"
)


def key(prefix: str = "r") -> str:
    return f"{prefix}-{next(_n)}"


class Clock:
    """Sets the time the ledger engine stamps on what it writes (``None``: the real time)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        clock = self

        class _Frozen(datetime):
            @classmethod
            def now(cls, tz: Any = None) -> datetime:  # type: ignore[override]
                moment = clock.moment or datetime.now(UTC)
                return moment.astimezone(tz) if tz else moment.replace(tzinfo=None)

        self.moment: datetime | None = None
        monkeypatch.setattr(engine, "datetime", _Frozen)

    @contextlib.contextmanager
    def at(self, moment: datetime) -> Iterator[None]:
        self.moment = moment
        try:
            yield
        finally:
            self.moment = None


async def activity(api: Api, token: str, brand: str, first: date, last: date, **args: Any) -> list[dict]:
    variables = {"b": brand, "f": first.isoformat(), "t": last.isoformat(), **args}
    query = (
        "query($b: ID!, $f: Date!, $t: Date!, $p: ReportPeriod! = DAY, $s: Boolean! = false) {"
        f" reports(brandId: $b) {{ activity(from: $f, to: $t, period: $p, byStore: $s) {{ {ACTIVITY} }} }} }}"
    )
    return list((await api.data(query, variables, token))["reports"]["activity"])


def _day(moment: datetime, tz: ZoneInfo) -> date:
    return moment.astimezone(tz).date()


async def recomputed(brand_id: int, zone: str) -> dict[date, dict[str, Any]]:
    """Activity per brand-local day straight from the brand's transactions and postings (no rollup)."""
    tz = ZoneInfo(zone)
    txns = {t.id: t for t in await LedgerTransaction.filter(brand_id=brand_id)}
    accounts = {a.id: a for a in await Account.filter(brand_id=brand_id)}
    postings = await Posting.filter(account_id__in=list(accounts)).values_list(
        "transaction_id", "account_id", "amount"
    )
    days: dict[date, dict[str, Any]] = defaultdict(
        lambda: {
            "issued": defaultdict(int),
            "burned": defaultdict(int),
            "transactions": 0,
            "purchases": 0,
            "salesFen": 0,
        }
    )
    for t in txns.values():
        day = days[_day(t.created_at, tz)]
        day["transactions"] += 1
        if "purchasedAt" in t.details and isinstance(t.details.get("amountFen"), int):
            day["purchases"] += 1
            day["salesFen"] += t.details["amountFen"]
    for txn_id, account_id, amount in postings:
        t, a = txns[txn_id], accounts[account_id]
        if str(a.asset) != "points":
            continue
        day = days[_day(t.created_at, tz)]
        if str(a.kind) == "issuance":
            day["issued"][str(t.kind)] -= amount
        elif str(a.kind) == "burn":
            day["burned"][str(t.kind)] += amount
    out = {}
    for d, v in days.items():
        issued = {k: n for k, n in v["issued"].items() if n and k != "adjust"}
        redeemed = {k: n for k, n in v["burned"].items() if n and k not in ("adjust", "expire")}
        out[d] = {
            "issuedByKind": dict(sorted(issued.items())),
            "redeemedByKind": dict(sorted(redeemed.items())),
            "issued": sum(issued.values()),
            "redeemed": sum(redeemed.values()),
            "expired": v["burned"].get("expire", 0),
            "adjusted": v["issued"].get("adjust", 0) - v["burned"].get("adjust", 0),
            "transactions": v["transactions"],
            "purchases": v["purchases"],
            "salesFen": v["salesFen"],
        }
    return out


def shown(row: dict[str, Any]) -> dict[str, Any]:
    """A report row in the form ``recomputed`` gives."""
    return {
        "issuedByKind": {e["kind"]: int(e["points"]) for e in row["issuedByKind"]},
        "redeemedByKind": {e["kind"]: int(e["points"]) for e in row["redeemedByKind"]},
        **{
            k: int(row[k])
            for k in ("issued", "redeemed", "expired", "adjusted", "transactions", "purchases", "salesFen")
        },
    }


class StatementCounter:
    """Counts the SQL statements sent to the database driver (asyncpg or aiosqlite) while active."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        import aiosqlite
        import asyncpg

        self.count = 0
        self.active = False
        self.seen: list[str] = []
        for cls, names in (
            (asyncpg.connection.Connection, ("fetch", "fetchrow", "fetchval", "execute", "executemany")),
            (aiosqlite.Connection, ("execute", "execute_fetchall", "executemany", "execute_insert")),
        ):
            for name in names:
                monkeypatch.setattr(cls, name, self._wrap(getattr(cls, name)))

    def _wrap(self, method: Any) -> Any:
        counter = self

        async def counted(*args: Any, **kwargs: Any) -> Any:
            if counter.active and _COUNTING.get():
                counter.count += 1
                counter.seen.append(str(args[1])[:120] if len(args) > 1 else "")
            return await method(*args, **kwargs)

        return counted

    @contextlib.asynccontextmanager
    async def counting(self) -> Any:
        self.count, self.active, self.seen = 0, True, []
        token = _COUNTING.set(True)  # this task and the tasks it starts: not the process's background work
        try:
            yield self
        finally:
            self.active = False
            _COUNTING.reset(token)
