"""Domain objects <-> protobuf messages (the only place floats and Decimals meet)."""

from __future__ import annotations

from quantumedge.execution.domain.orders import (
    Fill,
    Order,
    OrderRole,
    OrderStatus,
    OrderType,
    Side,
    TimeInForce,
    dec,
)
from quantumedge.execution.domain.positions import Position
from quantumedge.v1 import execution_pb2, risk_pb2


def order_type_to_pb(order_type: OrderType, post_only: bool) -> int:
    """The schema's order type: a post-only limit is ORDER_TYPE_LIMIT_MAKER (Binance's LIMIT_MAKER)."""
    if order_type is OrderType.LIMIT and post_only:
        return risk_pb2.ORDER_TYPE_LIMIT_MAKER
    return int(order_type)


def order_type_from_pb(value: int) -> tuple[OrderType, bool]:
    """(order type, post-only) of a schema order type; ValueError for one the domain does not know."""
    if value == risk_pb2.ORDER_TYPE_LIMIT_MAKER:
        return OrderType.LIMIT, True
    return OrderType(value), False


def order_to_pb(order: Order) -> execution_pb2.Order:
    return execution_pb2.Order(
        client_order_id=order.client_order_id,
        venue_order_id=order.venue_order_id,
        intent_id=order.intent_id,
        symbol=order.symbol,
        side=int(order.side),
        order_type=order_type_to_pb(order.order_type, order.post_only),
        time_in_force=int(order.time_in_force),
        role=int(order.role),
        quantity=float(order.quantity),
        price=float(order.price),
        stop_price=float(order.stop_price),
        filled_quantity=float(order.filled_quantity),
        average_price=float(order.average_price),
        fees=float(order.fees),
        status=int(order.status),
        reject_code=order.reject_code,
        reject_message=order.reject_message,
        created_time_ns=order.created_time_ns,
        updated_time_ns=order.updated_time_ns,
        group_id=order.group_id,
        venue=order.venue,
        take_profit_price=float(order.take_profit_price),
        stop_loss_price=float(order.stop_loss_price),
        trailing_stop_bps=float(order.trailing_stop_bps),
        time_stop_ns=order.time_stop_ns,
        time_stop_deadline_ns=order.time_stop_deadline_ns,
        protection_placed=order.protection_placed,
        parent_client_order_id=order.parent_client_order_id,
        trade_ids=sorted(order.trade_ids),
        version=order.version,
        sent_time_ms=order.sent_time_ms,
        base_fees=float(order.base_fees),
        expire_time_ns=order.expire_time_ns,
        outcome_unknown_since_ns=order.outcome_unknown_since_ns,
        outcome_unknown_code=order.outcome_unknown_code,
        synthetic_credit=float(order.synthetic_credit),
        trailing_peak=float(order.trailing_peak),
        protected_quantity=float(order.protected_quantity),
        protection_generation=order.protection_generation,
        exit_retry_attempts=order.exit_retry_attempts,
        exit_retry_due_ns=order.exit_retry_due_ns,
    )


def order_from_pb(pb: execution_pb2.Order) -> Order:
    filled = dec(pb.filled_quantity)
    order_type, post_only = order_type_from_pb(pb.order_type)
    return Order(
        client_order_id=pb.client_order_id,
        symbol=pb.symbol,
        side=Side(pb.side),
        order_type=order_type,
        post_only=post_only,
        quantity=dec(pb.quantity),
        price=dec(pb.price),
        stop_price=dec(pb.stop_price),
        time_in_force=TimeInForce(pb.time_in_force),
        role=OrderRole(pb.role),
        intent_id=pb.intent_id,
        group_id=pb.group_id,
        parent_client_order_id=pb.parent_client_order_id,
        venue=pb.venue,
        venue_order_id=pb.venue_order_id,
        status=OrderStatus(pb.status),
        filled_quantity=filled,
        # The quote total is not stored: quantity x average reproduces it to the average's precision.
        filled_quote=filled * dec(pb.average_price),
        fees=dec(pb.fees),
        base_fees=dec(pb.base_fees),
        reject_code=pb.reject_code,
        reject_message=pb.reject_message,
        created_time_ns=pb.created_time_ns,
        updated_time_ns=pb.updated_time_ns,
        take_profit_price=dec(pb.take_profit_price),
        stop_loss_price=dec(pb.stop_loss_price),
        trailing_stop_bps=dec(pb.trailing_stop_bps),
        time_stop_ns=pb.time_stop_ns,
        time_stop_deadline_ns=pb.time_stop_deadline_ns,
        protection_placed=pb.protection_placed,
        expire_time_ns=pb.expire_time_ns,
        sent_time_ms=pb.sent_time_ms,
        outcome_unknown_since_ns=pb.outcome_unknown_since_ns,
        outcome_unknown_code=pb.outcome_unknown_code,
        synthetic_credit=dec(pb.synthetic_credit),
        trailing_peak=dec(pb.trailing_peak),
        protected_quantity=dec(pb.protected_quantity),
        protection_generation=pb.protection_generation,
        exit_retry_attempts=pb.exit_retry_attempts,
        exit_retry_due_ns=pb.exit_retry_due_ns,
        trade_ids=set(pb.trade_ids),
        version=pb.version,
    )


def position_to_pb(position: Position) -> execution_pb2.Position:
    return execution_pb2.Position(
        symbol=position.symbol,
        quantity=float(position.tradable_quantity),
        average_price=float(position.average_price),
        realized_pnl=float(position.realized_pnl),
        unrealized_pnl=float(position.unrealized_pnl),
        fees=float(position.fees),
        mark_price=float(position.mark_price),
        updated_time_ns=position.updated_time_ns,
        baseline_quantity=float(position.baseline_quantity),
        baseline_set=position.baseline_set,
        dust_quantity=float(position.dust_quantity),
    )


def position_from_pb(pb: execution_pb2.Position) -> Position:
    return Position(
        symbol=pb.symbol,
        # The report carries the tradable part and the dust apart; the holding is both.
        quantity=dec(pb.quantity) + dec(pb.dust_quantity),
        dust_quantity=dec(pb.dust_quantity),
        average_price=dec(pb.average_price),
        realized_pnl=dec(pb.realized_pnl),
        fees=dec(pb.fees),
        mark_price=dec(pb.mark_price),
        baseline_quantity=dec(pb.baseline_quantity),
        baseline_set=pb.baseline_set,
        updated_time_ns=pb.updated_time_ns,
    )


def fill_to_pb(fill: Fill) -> execution_pb2.Fill:
    return execution_pb2.Fill(
        client_order_id=fill.client_order_id,
        trade_id=fill.trade_id,
        price=float(fill.price),
        quantity=float(fill.quantity),
        fee=float(fill.fee),
        fee_asset=fill.fee_asset,
        is_maker=fill.is_maker,
        time_ns=fill.time_ns,
        fee_quote=float(fill.fee_quote),
        base_fee=float(fill.base_fee),
    )
