"""CSV exports of the reports and of the HQ member list: ``GET /reports/{report}.csv?brandId=...``.

Authorised like ``reports(brandId:)`` (``report.read``: the brand's HQ key or a platform key, bearer
token), answered as a stream: the member list is read and sent a page at a time, never held whole.
Phones follow hub/privacy.py. Text cells that a spreadsheet would run as a formula are prefixed with
an apostrophe. docs/reports.md lists the reports and their columns.
"""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import AsyncIterator, Iterable
from datetime import date, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from hub.auth import Principal
from hub.domain import MemberListOrder, ReportPeriod
from hub.errors import DomainError, ErrorCode, InvalidInput
from hub.http.websocket import client_host
from hub.privacy import phone_for
from hub.resolvers import report_members, reports
from hub.schema.common import decode_id, encode_id

log = logging.getLogger(__name__)
PAGE = 500
_STATUS = {
    ErrorCode.UNAUTHENTICATED: 401,
    ErrorCode.PERMISSION_DENIED: 403,
    ErrorCode.NOT_FOUND: 404,
}


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def csv_line(values: Iterable[Any]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerow([_cell(v) for v in values])
    return out.getvalue()


def _date(request: Request, name: str) -> date:
    raw = request.query_params.get(name)
    if raw is None:
        raise InvalidInput(f"Give `{name}` (a date, 2026-11-01).", name)
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise InvalidInput(f"`{name}` is not a date (2026-11-01).", name) from None


def _choice(request: Request, name: str, enum: Any, default: Any) -> Any:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        return enum(raw.lower())
    except ValueError:
        allowed = ", ".join(e.value.upper() for e in enum)
        raise InvalidInput(f"`{name}` is one of {allowed}.", name) from None


async def _activity(request: Request, brand: Any, principal: Principal) -> AsyncIterator[str]:
    first, last = _date(request, "from"), _date(request, "to")
    period = _choice(request, "period", ReportPeriod, ReportPeriod.DAY)
    by_store = request.query_params.get("byStore", "false").lower() == "true"
    rows = await reports.brand_activity(brand, first, last, period, by_store)
    stores = await report_members.store_names({a.store_id for a in rows})
    yield csv_line(
        [
            "start",
            "end",
            "store_code",
            "store_name",
            "issued",
            "redeemed",
            "expired",
            "adjusted",
            "transactions",
            "purchases",
            "sales_fen",
            "redemption_rate",
            "issued_by_kind",
            "redeemed_by_kind",
        ]
    )
    for a in rows:
        code, name = stores.get(a.store_id, ("", ""))
        yield csv_line(
            [
                a.start,
                a.last_day,
                code,
                name,
                a.issued,
                a.redeemed,
                a.expired,
                a.adjusted,
                a.transactions,
                a.purchases,
                a.sales_fen,
                f"{a.redemption_rate:.6f}" if a.redemption_rate is not None else "",
                ";".join(f"{k}={v}" for k, v in a.issued_kinds.items()),
                ";".join(f"{k}={v}" for k, v in a.redeemed_kinds.items()),
            ]
        )


async def _liability(request: Request, brand: Any, principal: Principal) -> AsyncIterator[str]:
    li = await reports.brand_liability(brand)
    stores = await report_members.store_names({s.store_id for s in li.by_store})
    yield csv_line(
        ["part", "store_code", "store_name", "asset", "asset_code", "account_kind", "available", "pending",
         "balance", "value_fen"]
    )  # fmt: skip
    total = li.available + li.pending
    yield csv_line(["points", "", "", "points", "", "", li.available, li.pending, total, li.value_fen(total)])
    for s in li.by_store:
        code, name = stores.get(s.store_id, ("", ""))
        held = s.available + s.pending
        yield csv_line(
            ["store", code, name, "points", "", "", s.available, s.pending, held, li.value_fen(held)]
        )
    for a in li.assets:
        yield csv_line(["asset", "", "", a.asset, a.asset_code, a.account_kind, "", "", a.balance, ""])


async def _cohorts(request: Request, brand: Any, principal: Principal) -> AsyncIterator[str]:
    first, last = _date(request, "from"), _date(request, "to")
    period = _choice(request, "period", ReportPeriod, ReportPeriod.MONTH)
    found = await report_members.cohorts(brand, first, last, period)
    yield csv_line(["start", "end", "earned", "redeemed", "expired", "open"])
    for c in found:
        yield csv_line([c.start, c.last_day, c.earned, c.redeemed, c.expired, c.open])


async def _members(request: Request, brand: Any, principal: Principal) -> AsyncIterator[str]:
    first, last = _date(request, "from"), _date(request, "to")
    raw = request.query_params.get("lapsedDays", "90")
    if not raw.isdigit():
        raise InvalidInput("`lapsedDays` is a number of days.", "lapsedDays")
    counts = await report_members.member_counts(brand, first, last, int(raw))
    yield csv_line(["tier", "total", "enrolled", "active", "lapsed"])
    for t in counts.by_tier:
        yield csv_line([t.tier, t.total, t.enrolled, t.active, t.lapsed])
    yield csv_line(["(all)", counts.total, counts.enrolled, counts.active, counts.lapsed])


async def _member_list(request: Request, brand: Any, principal: Principal) -> AsyncIterator[str]:
    order = _choice(request, "orderBy", MemberListOrder, MemberListOrder.NEWEST)
    tier = request.query_params.get("tier")
    wanted = report_members.MemberFilter(tier=tier)
    yield csv_line(MEMBER_LIST_COLUMNS)
    after = None
    while True:
        page = await report_members.member_page(brand, wanted, order, PAGE, after, PAGE)
        stores = await report_members.store_names(
            {r.last_purchase_store_id for r in page.rows} | {r.join_store_id for r in page.rows}
        )
        chunk = []
        for r in page.rows:
            chunk.append(
                csv_line(
                    [
                        str(encode_id("Membership", r.membership_id)),
                        phone_for(principal, r.phone),
                        r.tier,
                        r.points,
                        r.pending,
                        r.lifetime_spend_fen,
                        r.last_purchase_at,
                        stores.get(r.last_purchase_store_id, ("", ""))[0],
                        stores.get(r.join_store_id, ("", ""))[0],
                        r.created_at,
                    ]
                )
            )
        yield "".join(chunk)
        if not page.has_next_page or not page.rows:
            return
        after = page.cursor(page.rows[-1])


MEMBER_LIST_COLUMNS = (
    "membership_id",
    "phone",
    "tier",
    "points",
    "pending_points",
    "lifetime_spend_fen",
    "last_purchase_at",
    "last_purchase_store_code",
    "join_store_code",
    "enrolled_at",
)
EXPORTS = {
    "activity": _activity,
    "liability": _liability,
    "cohorts": _cohorts,
    "members": _members,
    "member-list": _member_list,
}


def _error(error: DomainError) -> JSONResponse:
    status = _STATUS.get(error.code, 400)
    body = {
        "errors": [{"message": error.message, "extensions": {"code": error.code.value, "field": error.field}}]
    }
    return JSONResponse(body, status_code=status)


async def export_csv(request: Request) -> Response:
    name = request.path_params["report"]
    export = EXPORTS.get(name)
    if export is None:
        return _error(DomainError(ErrorCode.NOT_FOUND, f"No report {name!r}: {', '.join(EXPORTS)}."))
    services = request.app.state.services
    try:
        principal = await services.authenticator.principal_for(request.headers.get("authorization"))
        await request.app.state.rate_limiter.check(principal, client_host(request))
        raw = request.query_params.get("brandId")
        if not raw:
            raise InvalidInput("Give `brandId` (the brand's global id).", "brandId")
        brand = await reports.report_brand(principal, decode_id(raw, "Brand", "brandId"))
        assert principal is not None  # report_brand refused an anonymous caller
        rows = export(request, brand, principal)
        first = await anext(rows)  # bad parameters fail here, before the response starts
    except DomainError as error:
        return _error(error)

    async def stream() -> AsyncIterator[str]:
        yield first
        try:
            async for line in rows:
                yield line
        except Exception:
            # Headers are sent: the client sees a cut file; the log says why.
            log.exception("the %s export failed midway", name)
            raise

    filename = f"{name}-{raw.replace('=', '')}.csv"
    return StreamingResponse(
        stream(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"', "Cache-Control": "no-store"},
    )
