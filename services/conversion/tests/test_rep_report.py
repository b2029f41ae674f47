"""Rep reports: revenue one line per currency, computed by a fixed number of SQL statements."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp
from sqlalchemy import event
from sqlalchemy.engine import Engine

from closedloop.common.v1 import common_pb2 as c
from closedloop.conversion.v1 import conversion_pb2 as pb
from conversion_helpers import make_rep


def money(minor: int, currency: str) -> c.Money:
    return c.Money(currency=currency, amount_minor=minor)


def _now() -> Timestamp:
    at = Timestamp()
    at.GetCurrentTime()
    return at


async def _paid_order(stub: Any, tenant: str, rep_id: str, amount: c.Money) -> pb.Order:
    answer = await stub.RecordOrder(
        pb.RecordOrderRequest(
            tenant_id=tenant,
            customer_id=f"cust-{amount.currency}",
            rep_id=rep_id,
            amount=amount,
            paid_at=_now(),
        )
    )
    return answer.order


def lines(report: pb.RepReport) -> list[tuple[str, int, int]]:
    return [
        (r.won_revenue.currency, r.won_revenue.amount_minor, r.orders_paid) for r in report.revenue
    ]


async def test_a_rep_paid_in_two_currencies_has_one_revenue_line_for_each(stub, tenant):
    rep = await make_rep(stub, tenant, "seller")
    other = await make_rep(stub, tenant, "other")
    for amount in (money(10000, "CNY"), money(5000, "CNY"), money(2000, "USD")):
        await _paid_order(stub, tenant, rep.rep_id, amount)
    usd = await _paid_order(stub, tenant, rep.rep_id, money(3000, "USD"))
    # A USD refund comes off the USD line, not the CNY one.
    await stub.RefundOrder(
        pb.RefundOrderRequest(tenant_id=tenant, order_id=usd.order_id, amount=money(1000, "USD"))
    )
    await _paid_order(stub, tenant, other.rep_id, money(900, "EUR"))

    report = await stub.GetRepReport(pb.GetRepReportRequest(tenant_id=tenant, rep_id=rep.rep_id))
    [figures] = report.reps
    assert lines(figures) == [("CNY", 15000, 2), ("USD", 4000, 2)]
    # The deprecated single-currency fields: the largest line, and every order paid.
    assert figures.won_revenue == money(15000, "CNY") and figures.orders_paid == 4

    board = await stub.GetRepReport(pb.GetRepReportRequest(tenant_id=tenant))
    assert [(r.rep_id, lines(r)) for r in board.reps] == [
        (rep.rep_id, [("CNY", 15000, 2), ("USD", 4000, 2)]),
        (other.rep_id, [("EUR", 900, 1)]),
    ]
    # A range before the orders: no revenue lines, the old field CNY 0.
    early = await stub.GetRepReport(
        pb.GetRepReportRequest(
            tenant_id=tenant,
            rep_id=rep.rep_id,
            **{"from": Timestamp(seconds=1_000_000_000), "to": Timestamp(seconds=1_000_086_400)},
        )
    )
    [none] = early.reps
    assert lines(none) == [] and none.won_revenue == money(0, "CNY") and none.orders_paid == 0


@contextmanager
def _statements_of(tenant: str) -> Iterator[list[str]]:
    """The SQL statements run with `tenant` among their parameters while the block runs (the
    service runs in this process; other tenants' and the relay's statements are not counted)."""
    seen: list[str] = []

    def _count(conn: Any, cursor: Any, statement: str, parameters: Any, *rest: Any) -> None:
        if tenant in repr(parameters):
            seen.append(statement)

    event.listen(Engine, "before_cursor_execute", _count)
    try:
        yield seen
    finally:
        event.remove(Engine, "before_cursor_execute", _count)


async def test_the_report_takes_as_many_statements_for_100_orders_as_for_10(stub, tenant):
    rep = await make_rep(stub, tenant, "seller")
    await make_rep(stub, tenant, "idle")

    async def add_orders(n: int) -> None:
        for i in range(n):
            order = await _paid_order(
                stub, tenant, rep.rep_id, money(100 + i, "USD" if i % 2 else "CNY")
            )
            if i % 10 == 0:
                await stub.RefundOrder(
                    pb.RefundOrderRequest(tenant_id=tenant, order_id=order.order_id)
                )

    async def statements() -> int:
        # The fewest of three runs: a background worker's statement naming the tenant in the
        # same moment only ever adds.
        counts = []
        for _ in range(3):
            with _statements_of(tenant) as seen:
                await stub.GetRepReport(pb.GetRepReportRequest(tenant_id=tenant))
            counts.append(len(seen))
        return min(counts)

    await add_orders(10)
    at_10 = await statements()
    await add_orders(90)
    at_100 = await statements()
    assert at_10 == at_100 and at_10 <= 10
    board = await stub.GetRepReport(pb.GetRepReportRequest(tenant_id=tenant))
    assert sum(r.orders_paid for r in board.reps[0].revenue) == 100
