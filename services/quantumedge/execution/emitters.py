"""How the execution service publishes: reports on execution.reports.v1, state on execution.state.v1, and the
INFO line per order an operator reads in the logs."""

from __future__ import annotations

from quantumedge.shared import topics
from quantumedge.shared.bus import Bus
from quantumedge.shared.logs import get_logger
from quantumedge.v1 import common_pb2, execution_pb2, risk_pb2

# The service's logger name: operators' log filters keep matching after the split.
log = get_logger("quantumedge.execution.service")


class BusEmitter:
    """Reports to execution.reports.v1 (by symbol), state to the compacted execution.state.v1."""

    def __init__(self, bus: Bus) -> None:
        self.bus = bus

    def report(self, symbol: str, report: execution_pb2.ExecutionReport) -> None:
        self.bus.publish(topics.REPORTS, symbol or None, report)
        log_report(report)

    def state(self, key: str, record: execution_pb2.ExecutionReport | None) -> None:
        self.bus.publish(topics.EXEC_STATE, key, record)

    def flush(self) -> None:
        self.bus.flush()


class ObservingEmitter(BusEmitter):
    """Observe-only: reports (heartbeats of the flat position) are published; execution.state.v1 is not."""

    def state(self, key: str, record: execution_pb2.ExecutionReport | None) -> None:
        return None


def log_report(report: execution_pb2.ExecutionReport) -> None:
    """One INFO line per order sent, fill and rejection: what an operator reads in the logs."""
    order = report.order
    if not order.client_order_id:
        return
    fields = {
        "order": order.client_order_id,
        "symbol": order.symbol,
        "side": common_pb2.Side.Name(order.side).removeprefix("SIDE_"),
        "role": execution_pb2.OrderRole.Name(order.role).removeprefix("ORDER_ROLE_"),
        "venue": report.venue,
    }
    if report.HasField("fill"):
        fill = report.fill
        log.info("fill", extra={**fields, "quantity": fill.quantity, "price": fill.price, "fee": fill.fee})
    elif order.status == execution_pb2.ORDER_STATUS_REJECTED:
        log.info("order rejected", extra={**fields, "code": order.reject_code, "reason": order.reject_message})
    elif report.note.startswith("sending"):
        log.info(
            "order sent",
            extra={
                **fields,
                "type": risk_pb2.OrderType.Name(order.order_type).removeprefix("ORDER_TYPE_"),
                "quantity": order.quantity,
                "price": order.price,
            },
        )
