"""`quantumedge backtest`: the services' own features, models, risk and paper execution over recordings.

The recording is written by the real recorder from the synthetic market and the models are a real,
checksum-verified registry trained for these tests (conftest.py, gate waived), so every figure below comes
from the same code the services run.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from rich.console import Console

from quantumedge.backtest.cli import backtest_main, load_backtest_models
from quantumedge.backtest.metrics import FigureBuilder, Figures
from quantumedge.backtest.simulation import Backtest, BacktestResult, Recorded
from quantumedge.ingest.recorder import Recorder
from quantumedge.ingest.replay import ReplaySource
from quantumedge.ingest.synthetic import SyntheticMarket
from quantumedge.risk.domain.reasons import decision_codes
from quantumedge.settings import Settings, load_settings
from quantumedge.v1 import common_pb2, execution_pb2, market_pb2, risk_pb2, signal_pb2

STEPS = 3000
SEED = 11
SYMBOLS = ["BTCUSDT", "ETHUSDT"]


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("recordings")
    market = SyntheticMarket(SYMBOLS, seed=SEED)
    recorder = Recorder(root, clock_ns=lambda: market.start_ns).start()
    for event in market.events(STEPS):
        assert recorder.record(event)
    recorder.stop()
    assert recorder.stats.dropped == 0
    return root


@pytest.fixture(scope="module")
def settings(models_dir: Path) -> Settings:
    return load_settings(models_dir=models_dir)


@pytest.fixture(scope="module")
def models(settings: Settings):
    return load_backtest_models(settings, allow_missing=False, console=Console(stderr=True))


def _backtest(settings: Settings, models, events) -> tuple[BacktestResult, Recorded, Figures]:
    recorded, builder = Recorded(), FigureBuilder(list(settings.symbols))
    result = Backtest(settings, models, [recorded, builder]).run(events)
    return result, recorded, builder.figures(result)


def _synthetic(steps: int = STEPS) -> list[market_pb2.MarketEvent]:
    return list(SyntheticMarket(SYMBOLS, seed=SEED).events(steps))


@pytest.fixture(autouse=True)
def _trained_registry(monkeypatch: pytest.MonkeyPatch, models_dir: Path) -> None:
    # The CLI finds the registry the way an operator points it at one; --models-dir still overrides it.
    monkeypatch.setenv("QE_MODELS_DIR", str(models_dir))


def _run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = backtest_main(args)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_backtest_of_a_recording_trades_and_its_figures_add_up(
    recording: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    code, stdout, stderr = _run(["--data", str(recording), "--out", str(out)], capsys)
    assert code == 0, stderr
    assert "QuantumEdge backtest" in stdout and "per symbol" in stdout

    summary = json.loads((out / "summary.json").read_text())
    fills = pq.read_table(out / "fills.parquet").to_pylist()
    equity = pq.read_table(out / "equity.parquet").to_pylist()
    decisions = pq.read_table(out / "decisions.parquet").to_pylist()

    recorded = sum(pq.read_metadata(p).num_rows for p in recording.rglob("*.parquet"))
    assert summary["events"] == recorded > 2 * STEPS  # every recorded event went through
    assert summary["fills"] == len(fills) > 0
    assert summary["intents"] > 0 and summary["orders"] >= summary["intents"]
    assert summary["signals"] == len(decisions) == summary["intents"] + summary["rejections"]
    assert sum(d["approved"] for d in decisions) == summary["intents"]
    # Every rejection is explained, and the table counts each failed check once per decision.
    assert all(d["reasons"] for d in decisions)
    assert sum(summary["rejections_by_reason"].values()) >= summary["rejections"]

    # PnL: the fills' realised deltas are the realised PnL (net of fees), the fees are the fills' fees,
    # and the equity curve ends at starting equity + PnL.
    assert summary["realized_pnl"] == pytest.approx(sum(f["realized_pnl_delta"] for f in fills), abs=1e-6)
    assert summary["fees"] == pytest.approx(sum(f["fee_quote"] for f in fills), abs=1e-6)
    assert summary["fees"] > 0
    assert equity[-1]["equity"] == pytest.approx(summary["starting_equity"] + summary["pnl"], abs=1e-6)
    assert summary["final_equity"] == pytest.approx(equity[-1]["equity"], abs=1e-6)
    peak, worst = equity[0]["equity"], 0.0
    for point in equity:
        peak = max(peak, point["equity"])
        worst = max(worst, peak - point["equity"])
    assert summary["max_drawdown"] == pytest.approx(worst, abs=1e-9)
    assert 0 <= summary["wins"] <= summary["round_trips"]
    times = [p["time_ns"] for p in equity]
    assert times == sorted(times)
    # The run says which verified model versions it used.
    assert {(m["symbol"], m["horizon"]) for m in summary["run"]["models"]} == {
        (s, h) for s in SYMBOLS for h in (1, 5, 30)
    }


def test_replaying_a_recording_equals_running_its_events_directly(recording: Path, settings: Settings, models) -> None:
    _, direct, fd = _backtest(settings, models, _synthetic())
    _, replayed, fr = _backtest(settings, models, ReplaySource(recording, SYMBOLS).events())

    def key(recorded: Recorded):
        return [
            (r.order.client_order_id, r.fill.price, r.fill.quantity, r.fill.time_ns)
            for r in recorded.reports
            if r.HasField("fill")
        ]

    assert key(direct) and key(direct) == key(replayed)
    assert fd.pnl == pytest.approx(fr.pnl, abs=1e-9)


def test_backtest_is_deterministic(settings: Settings, models) -> None:
    (ra, a, fa), (rb, b, fb) = (_backtest(settings, models, _synthetic()) for _ in range(2))

    def unsigned(decision: risk_pb2.RiskDecision) -> bytes:
        # Each run signs with its own in-memory key: everything but the signature is the same.
        assert decision.signature.key_id.startswith("ephemeral-") and len(decision.signature.ed25519) == 64
        copy = risk_pb2.RiskDecision()
        copy.CopyFrom(decision)
        copy.ClearField("signature")
        return copy.SerializeToString()

    assert [unsigned(d) for d in a.decisions] == [unsigned(d) for d in b.decisions]
    assert a.decisions[0].signature != b.decisions[0].signature
    assert ra.refused == rb.refused == {}  # every decision and halt passed the services' own checks
    assert [r.SerializeToString() for r in a.reports] == [r.SerializeToString() for r in b.reports]
    assert a.equity == b.equity and fa == fb


def test_figures_agree_with_the_execution_engine_and_the_equity_curve(settings: Settings, models) -> None:
    result, recorded, figs = _backtest(settings, models, _synthetic())
    status = result.execution_status
    assert figs.fills == status.fills > 0
    assert figs.orders == status.orders_placed
    assert figs.rejected_orders == status.rejects
    assert figs.realized_pnl == pytest.approx(status.realized_pnl, abs=1e-6)
    assert figs.unrealized_pnl == pytest.approx(status.unrealized_pnl, abs=1e-6)
    assert figs.fees == pytest.approx(status.fees, abs=1e-6) and figs.fees > 0
    assert figs.final_equity == pytest.approx(status.equity, abs=1e-6)
    assert result.final_equity is not None and result.final_equity.equity == pytest.approx(status.equity, abs=1e-6)
    # Every fill is followed by an equity point at its time (the curve sees every trade).
    fill_times = {r.time_ns for r in recorded.reports if r.HasField("fill")}
    assert fill_times <= {p.time_ns for p in recorded.equity}
    # A position's first report is marked at the market (half the spread against it), never at a stale mark.
    for r in recorded.reports:
        # (the opening fill's report: later ones carry the mark of a market that moved while it was held)
        if r.HasField("fill") and r.order.role == execution_pb2.ORDER_ROLE_ENTRY and r.position.mark_price:
            mid_gap = abs(r.position.mark_price - r.position.average_price) / r.position.average_price
            assert mid_gap < 0.002, r


def _quiet_eth(settings: Settings, models) -> tuple[Recorded, tuple[int, int], int]:
    """ETHUSDT goes silent for five minutes while BTCUSDT trades on."""
    events = _synthetic(1200)
    t0 = events[0].exchange_time_ns
    gap = (t0 + 400_000_000_000, t0 + 700_000_000_000)
    kept = [e for e in events if not (e.symbol == "ETHUSDT" and gap[0] <= e.exchange_time_ns < gap[1])]
    _, recorded, _ = _backtest(settings, models, kept)
    # A row is due when the market clock reaches its boundary + row lateness (rowclock.py); the clock moves
    # with the market's events, at least one per synthetic step.
    due_ns = int(settings.inference.row_lateness_ms * 1e6) + SyntheticMarket(SYMBOLS).step_ns
    return recorded, gap, due_ns


def _delay(d: risk_pb2.RiskDecision) -> int:
    return d.decided_time_ns - int(d.signal_id.rsplit("-", 1)[1])


def test_rows_held_for_a_quiet_stream_are_released_on_the_market_clock(settings: Settings, models) -> None:
    """A quiet symbol never holds another symbol's rows: BTCUSDT is decided on time all through
    ETHUSDT's silence, and so is ETHUSDT on both sides of it."""
    recorded, gap, due_ns = _quiet_eth(settings, models)
    btc = [d for d in recorded.decisions if d.symbol == "BTCUSDT"]
    assert any(gap[0] <= d.decided_time_ns < gap[1] for d in btc)
    for d in btc:
        assert _delay(d) <= due_ns, d.signal_id
    eth = [d for d in recorded.decisions if d.symbol == "ETHUSDT"]
    before = [d for d in eth if d.decided_time_ns < gap[0]]
    after = [d for d in eth if int(d.signal_id.rsplit("-", 1)[1]) >= gap[1]]
    assert before and after
    for d in before + after:
        assert _delay(d) <= due_ns, d.signal_id


def test_a_silent_symbols_rows_are_never_decided_late(settings: Settings, models) -> None:
    recorded, _, due_ns = _quiet_eth(settings, models)
    late = [d.signal_id for d in recorded.decisions if d.symbol == "ETHUSDT" and _delay(d) > due_ns]
    assert late == []


def test_round_trips_wins_and_flips_are_counted_from_fills() -> None:
    builder = FigureBuilder(["BTCUSDT"])

    def fill(qty_after: float, delta: float, cid: str) -> execution_pb2.ExecutionReport:
        return execution_pb2.ExecutionReport(
            order=execution_pb2.Order(client_order_id=cid, symbol="BTCUSDT", status=execution_pb2.ORDER_STATUS_FILLED),
            fill=execution_pb2.Fill(client_order_id=cid, quantity=1.0, price=100.0, fee=0.1),
            position=execution_pb2.Position(symbol="BTCUSDT", quantity=qty_after),
            realized_pnl_delta=delta,
            fee_delta=0.1,
        )

    for report in (
        fill(1.0, -0.1, "a"),  # open long
        fill(0.0, 1.9, "b"),  # close: +1.8 net -> a win
        fill(1.0, -0.1, "c"),  # open long
        fill(-1.0, -0.6, "d"),  # flip: closes the long at -0.7 (a loss), opens a short
        fill(0.0, 0.4, "e"),  # close the short: +0.4 -> a win
    ):
        builder.on_report(report)
    figs = builder.figures(BacktestResult(["BTCUSDT"], 10_000.0))
    assert figs.round_trips == 3 and figs.wins == 2 and figs.win_rate == pytest.approx(2 / 3)
    assert figs.orders == 5 and figs.fills == 5
    assert figs.realized_pnl == pytest.approx(1.5) and figs.fees == pytest.approx(0.5)


def test_events_without_exchange_time_are_timed_by_arrival_and_counted(settings: Settings, models) -> None:
    timed = _synthetic(1500)
    untimed = []
    for e in timed:
        copy = market_pb2.MarketEvent()
        copy.CopyFrom(e)
        if copy.WhichOneof("payload") == "top_of_book":
            copy.receive_time_ns, copy.exchange_time_ns = copy.exchange_time_ns, 0
        untimed.append(copy)
    a, _, fa = _backtest(settings, models, timed)
    b, _, fb = _backtest(settings, models, untimed)
    assert b.untimed_events > 0 and a.untimed_events == 0
    assert fb.signals == fa.signals > 0 and fb.fills == fa.fills


def test_a_limit_set_in_configuration_binds_in_the_backtest(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "tiny.yaml"
    config.write_text("risk:\n  limits:\n    max_order_notional: 1.0\n")
    out = tmp_path / "run"
    code, _, stderr = _run(
        ["--synthetic-steps", str(STEPS), "--seed", str(SEED), "--config", str(config), "--out", str(out)], capsys
    )
    assert code == 0, stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["run"]["limits"]["max_order_notional"] == 1.0
    assert summary["intents"] == 0 and summary["orders"] == 0 and summary["fills"] == 0
    # Entries that got as far as sizing were refused by this limit, and said so.
    assert summary["rejections_by_reason"].get("max_order_notional", 0) > 0
    refused = [
        r
        for d in pq.read_table(out / "decisions.parquet").to_pylist()
        for r in d["reasons"]
        if r.startswith("max_order_notional")
    ]
    assert refused and all("below the venue minimum notional" in r for r in refused)


def test_a_hard_limit_breach_halts_execution_in_the_backtest(settings: Settings, models) -> None:
    limits = settings.risk.limits.model_copy(update={"max_loss_streak": 1})
    strict = settings.model_copy(update={"risk": settings.risk.model_copy(update={"limits": limits})})
    recorded, builder = Recorded(), FigureBuilder(list(strict.symbols))
    run = Backtest(strict, models, [recorded, builder])
    result = run.run(_synthetic())
    figs = builder.figures(result)
    assert result.halts and result.halts[0].limit == "max_loss_streak"
    assert result.halted_at_end and result.execution_halted_at_end and figs.halts
    halted_at = result.halts[0].time_ns
    later = [d for d in recorded.decisions if d.decided_time_ns > halted_at]
    assert later and not any(d.approved and d.intent.kind == risk_pb2.INTENT_KIND_ENTRY for d in later)
    # A signal that passes the policy meets the halt (the others fail earlier checks, as in the service).
    strong = signal_pb2.Signal(
        signal_id="after-the-halt",
        symbol="BTCUSDT",
        event_time_ns=run.now_ns,
        created_time_ns=run.now_ns,
        predictions=[signal_pb2.HorizonPrediction(horizon=5, p_up=0.9, expected_return_bps=500.0)],
        edge=0.8,
        confidence=0.9,
        regime=common_pb2.REGIME_LOW_VOL_RANGE,
    )
    decision = run.risk.decide(strong, run.now_ns)
    assert not decision.approved
    assert "halted" in decision_codes(decision), decision.reasons
    # Execution itself holds the halt: no entry order reaches the venue after it.
    late_entries = [
        r
        for r in recorded.reports
        if r.order.role == execution_pb2.ORDER_ROLE_ENTRY
        and r.time_ns > halted_at
        and r.order.status == execution_pb2.ORDER_STATUS_NEW
    ]
    assert late_entries == []


def test_missing_models_stop_the_backtest_naming_them(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    empty = tmp_path / "models"
    empty.mkdir()
    code, _, stderr = _run(["--synthetic-steps", "10", "--models-dir", str(empty)], capsys)
    assert code == 2
    assert "manifest.json" in stderr and "BTCUSDT/h1" in stderr


def test_the_shipped_models_backtest_on_what_the_gate_promoted(capsys: pytest.CaptureFixture[str]) -> None:
    """The README's example: the shipped registry promotes h5 only (h1 and h30 were refused by the gate), so
    the backtest runs the promoted ensemble (and warns which horizons it leaves out)."""
    code, stdout, stderr = _run(["--synthetic-steps", "300", "--seed", "11"], capsys)
    assert code == 0, stderr
    assert "QuantumEdge backtest" in stdout


def test_a_tampered_model_stops_the_backtest_naming_it(
    models_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    models = tmp_path / "models"
    shutil.copytree(models_dir, models)
    artifact = models / "ETHUSDT" / "h5" / "v1.onnx"
    data = bytearray(artifact.read_bytes())
    data[-1] ^= 0xFF
    artifact.write_bytes(bytes(data))
    code, _, stderr = _run(["--synthetic-steps", "10", "--models-dir", str(models)], capsys)
    assert code == 2
    assert "ETHUSDT/h5" in stderr and "sha256" in stderr


def test_missing_input_stops_the_backtest_naming_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    absent = tmp_path / "nowhere"
    code, _, stderr = _run(["--data", str(absent)], capsys)
    assert code == 2 and "nowhere" in stderr and "does not exist" in stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    code, _, stderr = _run(["--data", str(empty)], capsys)
    assert code == 2 and "no recorded Parquet files" in stderr


def test_a_corrupt_recording_stops_the_backtest_naming_the_file(
    recording: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = tmp_path / "recordings"
    shutil.copytree(recording, broken)
    victim = sorted(broken.rglob("*.parquet"))[0]
    data = bytearray(victim.read_bytes())
    data[len(data) // 2 : len(data) // 2 + 64] = b"\x00" * 64
    victim.write_bytes(bytes(data))
    code, _, stderr = _run(["--data", str(broken)], capsys)
    assert code == 2 and "cannot read recorded file" in stderr and victim.name in stderr


def test_a_symbol_named_twice_is_traded_once(recording: Path, capsys: pytest.CaptureFixture[str], tmp_path) -> None:
    once, twice = tmp_path / "once", tmp_path / "twice"
    assert _run(["--data", str(recording), "--symbols", "BTCUSDT", "--out", str(once)], capsys)[0] == 0
    assert _run(["--data", str(recording), "--symbols", "BTCUSDT", "btcusdt", "--out", str(twice)], capsys)[0] == 0
    a, b = (json.loads((d / "summary.json").read_text()) for d in (once, twice))
    assert a["events"] == b["events"] > 0 and a["fills"] == b["fills"]


def test_contradictory_sources_are_refused(recording: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, stderr = _run(["--data", str(recording), "--synthetic-steps", "10"], capsys)
    assert code == 2 and "either --data or --synthetic-steps" in stderr


def _unsigned(decision: risk_pb2.RiskDecision) -> bytes:
    copy = risk_pb2.RiskDecision()
    copy.CopyFrom(decision)
    copy.ClearField("signature")  # each run signs with its own in-memory key
    return copy.SerializeToString()


def test_the_columnar_rows_are_the_recorded_events(recording: Path) -> None:
    source = ReplaySource(recording, SYMBOLS)
    events, rows = list(source.events()), list(source.rows())
    assert len(rows) == len(events) > 0
    assert [r.to_pb() for r in rows] == events
    kinds = {r.WhichOneof("payload") for r in rows}
    assert {"trade", "top_of_book", "depth"} <= kinds


def test_a_backtest_over_columnar_rows_decides_and_fills_as_over_protobuf_events(
    recording: Path, settings: Settings, models
) -> None:
    source = ReplaySource(recording, SYMBOLS)
    ra, a, fa = _backtest(settings, models, source.events())
    rb, b, fb = _backtest(settings, models, source.rows())
    assert a.decisions and any(r.HasField("fill") for r in a.reports)
    # Id for id: every decision (its id, intent, verdict) and every report, in the same order.
    assert [d.decision_id for d in a.decisions] == [d.decision_id for d in b.decisions]
    assert [_unsigned(d) for d in a.decisions] == [_unsigned(d) for d in b.decisions]
    assert [r.SerializeToString() for r in a.reports] == [r.SerializeToString() for r in b.reports]
    assert a.equity == b.equity and fa == fb and ra.refused == rb.refused == {}


def test_untimed_rows_are_timed_by_arrival_as_events_are(settings: Settings, models) -> None:
    from quantumedge.shared import market_files
    from quantumedge.shared.market_rows import table_to_rows

    untimed = []
    for e in _synthetic(1500):
        if e.WhichOneof("payload") == "top_of_book":
            e.receive_time_ns, e.exchange_time_ns = e.exchange_time_ns, 0
        untimed.append(e)
    rows = list(table_to_rows(market_files.events_to_table(untimed)))
    a, ea, fa = _backtest(settings, models, untimed)
    b, eb, fb = _backtest(settings, models, rows)
    assert a.untimed_events == b.untimed_events > 0
    assert [r.SerializeToString() for r in ea.reports] == [r.SerializeToString() for r in eb.reports]
    assert fa == fb


def test_rows_of_a_sliced_batch_are_that_slices_events() -> None:
    # Replay reads a table in slices (record batches) whose list offsets index the whole table's levels.
    from quantumedge.shared import market_files
    from quantumedge.shared.market_rows import table_to_rows

    table = market_files.events_to_table(_synthetic(300))
    assert table.column("bids").null_count > 0  # trades and tops between depth rows: null level lists
    for offset, length in ((0, 7), (1, 50), (133, 211), (table.num_rows - 5, 5)):
        part = table.slice(offset, length)
        assert [r.to_pb() for r in table_to_rows(part)] == list(market_files.table_to_events(part))
    batches = table.to_batches(max_chunksize=64)
    assert len(batches) > 1
    assert [r.to_pb() for b in batches for r in table_to_rows(b)] == list(market_files.table_to_events(table))
