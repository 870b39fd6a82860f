"""The operator commands: status, halt, reduce, activate, resume, flatten, cancel-all, limits, decisions, explain.

Each wraps one or two RPCs; changing ones send the token from QE_OPERATOR_TOKEN and are audited by the
service under that token's subject. Output is for people: one line per action, tables for lists.
"""

from __future__ import annotations

import argparse
import datetime as dt
import re
import time
from typing import TYPE_CHECKING, Any

from quantumedge.ops import units
from quantumedge.ops.client import Services, operator_token
from quantumedge.risk.domain.reasons import decision_codes
from quantumedge.shared.errors import OperatorError
from quantumedge.v1 import execution_pb2, risk_pb2

if TYPE_CHECKING:
    from quantumedge.settings import Settings  # annotations only: the caller hands the root in

COMMANDS = ("status", "halt", "reduce", "activate", "resume", "flatten", "cancel-all", "limits", "decisions", "explain")
_DURATION = re.compile(r"^([0-9.]+)\s*(ns|us|µs|ms|s|min|h)?$")
_NS = {"ns": 1, "us": 1e3, "µs": 1e3, "ms": 1e6, "s": 1e9, "min": 60e9, "h": 3600e9}


def add_parsers(sub: argparse._SubParsersAction) -> None:
    status = sub.add_parser(
        "status", help="one table of all services: health, state, equity, PnL, positions, lag, models"
    )
    status.add_argument(
        "--wait", type=float, default=0.0, metavar="S", help="first wait up to S seconds for all four to serve"
    )
    halt = sub.add_parser("halt", help="halt trading: no new entries (exits and protection still go)")
    halt.add_argument("--reason", default="operator halt")
    halt.add_argument("--cancel-open-orders", action="store_true", help="also cancel the open entry orders")
    halt.add_argument("--flatten", action="store_true", help="also close every position at market")
    reduce = sub.add_parser("reduce", help="exits only: refuse new entries, let exits and protection through")
    reduce.add_argument("--symbol", default="", help="one symbol (default: the whole account)")
    reduce.add_argument("--reason", default="operator reduce")
    activate = sub.add_parser("activate", help="back to ACTIVE after `reduce` (a halt needs `resume`)")
    activate.add_argument("--symbol", default="", help="one symbol (default: the whole account)")
    activate.add_argument("--reason", default="operator activate")
    resume = sub.add_parser("resume", help="lift a halt (refused while a halting limit is still breached)")
    resume.add_argument("--reason", default="operator resume")
    for name, text in (("flatten", "close positions at market"), ("cancel-all", "cancel open orders")):
        p = sub.add_parser(name, help=text)
        p.add_argument("--symbol", default="", help="one symbol (default: all)")
        p.add_argument("--reason", default=f"operator {name}")
    limits = sub.add_parser("limits", help="show the risk limits, or change some: limits set NAME=VALUE ...")
    limits.add_argument("action", nargs="?", choices=("show", "set"), default="show")
    limits.add_argument(
        "assignments", nargs="*", metavar="NAME=VALUE", help="e.g. daily_loss_limit=300 order_window_ns=60s"
    )
    limits.add_argument("--reason", default="operator limits change")
    decisions = sub.add_parser("decisions", help="recent risk decisions, newest first (ids for `explain`)")
    decisions.add_argument("--symbol", default="")
    outcome = decisions.add_mutually_exclusive_group()
    outcome.add_argument("--approved", action="store_const", dest="outcome", const="approved")
    outcome.add_argument("--rejected", action="store_const", dest="outcome", const="rejected")
    decisions.add_argument("--reason", default="", help="a reason code, e.g. max_spread_bps, min_confidence, halted")
    decisions.add_argument("--limit", type=int, default=20)
    decisions.add_argument("--ids", action="store_true", help="print only the decision ids, one a line (for explain)")
    decisions.add_argument(
        "--wait", type=float, default=0.0, metavar="SECONDS", help="wait up to this long for a first matching decision"
    )
    explain = sub.add_parser("explain", help="one decision in full: every reason and the order it approved")
    explain.add_argument("decision_id")


def run(command: str, args: argparse.Namespace, settings: Settings) -> int:
    from quantumedge.ops.status import print_status

    with Services(settings) as services:
        if command == "status":
            if args.wait:
                wait_serving(services, args.wait)
            return print_status(settings, services)
        handler = _HANDLERS[command]
        return handler(args, services)


def wait_serving(services: Services, timeout_s: float) -> None:
    import time

    deadline = time.monotonic() + timeout_s
    while True:
        health = {name: services.health(name) for name in services.addresses}
        if all(h == "SERVING" for h in health.values()):
            return
        if time.monotonic() >= deadline:
            waiting = ", ".join(f"{n} {h}" for n, h in health.items() if h != "SERVING")
            raise OperatorError(f"not serving after {timeout_s:g} s: {waiting}", reason="not_serving")
        time.sleep(0.5)


def _halt(args: argparse.Namespace, s: Services) -> int:
    request = risk_pb2.HaltRequest(reason=args.reason, cancel_open_orders=args.cancel_open_orders, flatten=args.flatten)
    answer = s.call("risk", s.risk.Halt, request, operator_token())
    print(f"trading {'HALTED' if answer.halted else 'not halted'}: {args.reason}")
    return 0


def _reduce(args: argparse.Namespace, s: Services) -> int:
    request = risk_pb2.ReduceRequest(symbol=args.symbol.upper(), reason=args.reason)
    answer = s.call("risk", s.risk.Reduce, request, operator_token())
    print(f"{args.symbol.upper() or 'account'} {state_name(answer.state.state)}: {args.reason}")
    return 0


def _activate(args: argparse.Namespace, s: Services) -> int:
    request = risk_pb2.ActivateRequest(symbol=args.symbol.upper(), reason=args.reason)
    answer = s.call("risk", s.risk.Activate, request, operator_token())
    print(f"{args.symbol.upper() or 'account'} {state_name(answer.state.state)}: {args.reason}")
    return 0


def state_name(state: int) -> str:
    """ACTIVE / REDUCING / HALTED from the proto enum."""
    return risk_pb2.TradingState.Name(state).removeprefix("TRADING_STATE_")


def _resume(args: argparse.Namespace, s: Services) -> int:
    answer = s.call("risk", s.risk.Resume, risk_pb2.ResumeRequest(reason=args.reason), operator_token())
    print(f"trading {'still HALTED' if answer.halted else 'ACTIVE'}: {args.reason}")
    return 0


def _flatten(args: argparse.Namespace, s: Services) -> int:
    request = execution_pb2.FlattenRequest(symbol=args.symbol, reason=args.reason)
    answer = s.call("execution", s.execution.Flatten, request, operator_token())
    print(f"flatten {args.symbol or 'all symbols'}: {answer.orders_sent} closing orders sent")
    return 0


def _cancel_all(args: argparse.Namespace, s: Services) -> int:
    request = execution_pb2.CancelAllRequest(symbol=args.symbol, reason=args.reason)
    answer = s.call("execution", s.execution.CancelAll, request, operator_token())
    print(f"cancel-all {args.symbol or 'all symbols'}: {answer.canceled} orders canceled")
    return 0


def parse_assignment(text: str) -> tuple[str, float]:
    name, sep, raw = text.partition("=")
    field = risk_pb2.RiskLimits.DESCRIPTOR.fields_by_name.get(name.strip())
    if not sep or field is None:
        known = ", ".join(f.name for f in risk_pb2.RiskLimits.DESCRIPTOR.fields)
        raise OperatorError(f"{text!r} is not NAME=VALUE with a limit name ({known})", reason="invalid_argument")
    raw = raw.strip()
    match = _DURATION.match(raw) if name.endswith("_ns") else None
    try:
        value = float(match.group(1)) * _NS[match.group(2) or "ns"] if match else float(raw)
    except ValueError:
        raise OperatorError(f"{name}: {raw!r} is not a number", reason="invalid_argument") from None
    return name.strip(), value


def _limits(args: argparse.Namespace, s: Services) -> int:
    if args.action == "set":
        if not args.assignments:
            raise OperatorError("limits set needs NAME=VALUE pairs", reason="invalid_argument")
        limits = risk_pb2.RiskLimits()
        mask = []
        for text in args.assignments:
            name, value = parse_assignment(text)
            field = risk_pb2.RiskLimits.DESCRIPTOR.fields_by_name[name]
            setattr(limits, name, int(value) if field.cpp_type in (field.CPPTYPE_INT32, field.CPPTYPE_INT64) else value)
            mask.append(name)
        request = risk_pb2.UpdateLimitsRequest(limits=limits, update_mask=mask, reason=args.reason)
        current = s.call("risk", s.risk.UpdateLimits, request, operator_token()).limits
    else:
        current = s.limits()
    _print_limits(current)
    return 0


def _print_limits(limits: risk_pb2.RiskLimits) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="risk limits")
    table.add_column("limit")
    table.add_column("value", justify="right")
    for field in risk_pb2.RiskLimits.DESCRIPTOR.fields:
        table.add_row(field.name, units.limit_value(field.name, getattr(limits, field.name)))
    Console(width=120).print(table)


def decision_row(d: risk_pb2.RiskDecision) -> dict[str, Any]:
    """A decision as the CLI and the console show it."""
    when = (
        dt.datetime.fromtimestamp(d.decided_time_ns / 1e9, dt.UTC).strftime("%H:%M:%S.%f")[:-3]
        if d.decided_time_ns
        else ""
    )
    return {
        "id": d.decision_id,
        "time": when,
        "symbol": d.symbol,
        "outcome": "approved" if d.approved else "rejected",
        "codes": ", ".join(decision_codes(d)),
        "reason": d.reasons[0] if d.reasons else "",
    }


def _decisions(args: argparse.Namespace, s: Services) -> int:
    from rich.console import Console
    from rich.table import Table

    found = s.decisions(args.symbol, args.outcome or "", args.reason, args.limit)
    # A fresh system decides nothing until its features have warmed up: --wait polls for the first one.
    deadline = time.monotonic() + max(0.0, args.wait)
    while not found and time.monotonic() < deadline:
        time.sleep(min(1.0, max(0.0, deadline - time.monotonic())))
        found = s.decisions(args.symbol, args.outcome or "", args.reason, args.limit)
    if args.wait and not found:
        raise OperatorError(f"no matching decision within --wait {args.wait:g} s", reason="no_decision")
    if args.ids:
        print("\n".join(d.decision_id for d in found))
        return 0 if found else 1
    table = Table(title=f"recent decisions ({len(found)})")
    for column in ("id", "time", "symbol", "outcome", "codes", "reason"):
        table.add_column(column, overflow="fold")
    for d in found:
        table.add_row(*decision_row(d).values())
    Console(width=200).print(table)
    return 0


def explain_lines(d: risk_pb2.RiskDecision) -> list[str]:
    row = decision_row(d)
    lines = [
        f"decision {d.decision_id}: {row['outcome']} {d.symbol} at {row['time']} UTC (signal {d.signal_id or '-'})"
    ]
    lines += [f"  - {reason}" for reason in d.reasons]
    if d.HasField("intent"):
        i = d.intent
        side = "BUY" if i.side == 1 else "SELL"
        kind = risk_pb2.IntentKind.Name(i.kind).removeprefix("INTENT_KIND_")
        order_type = risk_pb2.OrderType.Name(i.order_type).removeprefix("ORDER_TYPE_")
        lines.append(
            f"  order: {kind} {side} {units.quantity(i.quantity)} {i.symbol} {order_type}"
            f" at ref {units.money(i.reference_price)}"
        )
        if i.take_profit_price or i.stop_loss_price:
            lines.append(
                f"  protection: take profit {units.money(i.take_profit_price)}, stop {units.money(i.stop_loss_price)}"
            )
        if i.time_stop_ns:
            lines.append(f"  time stop: {units.duration(i.time_stop_ns)}")
    return lines


def _explain(args: argparse.Namespace, s: Services) -> int:
    print("\n".join(explain_lines(s.explain(args.decision_id))))
    return 0


_HANDLERS = {
    "halt": _halt,
    "reduce": _reduce,
    "activate": _activate,
    "resume": _resume,
    "flatten": _flatten,
    "cancel-all": _cancel_all,
    "limits": _limits,
    "decisions": _decisions,
    "explain": _explain,
}
