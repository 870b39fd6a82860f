"""`quantumedge backtest`: the services' own features, models, risk and paper execution over recordings.

The recording is written by the real recorder from the synthetic market and the models are the shipped,
checksum-verified registry, so every figure below comes from the same code the services run.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from rich.console import Console

from quantumedge.backtest.cli import backtest_main, load_backtest_models
from quantumedge.backtest.metrics import figures
from quantumedge.backtest.simulation import Backtest
from quantumedge.ingest.recorder import Recorder
from quantumedge.ingest.replay import ReplaySource
from quantumedge.ingest.synthetic import SyntheticMarket
from quantumedge.shared.config import REPO_ROOT, load_settings

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
def models():
    return load_backtest_models(load_settings(), allow_missing=False, console=Console(stderr=True))


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
    assert summary["fees"] == pytest.approx(sum(f["fee"] for f in fills), abs=1e-6)
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


def test_replaying_a_recording_equals_running_its_events_directly(recording: Path, models) -> None:
    settings = load_settings()
    direct = Backtest(settings, models).run(SyntheticMarket(SYMBOLS, seed=SEED).events(STEPS))
    replayed = Backtest(settings, models).run(ReplaySource(recording, SYMBOLS).events())

    def key(result):
        return [
            (r.order.client_order_id, r.fill.price, r.fill.quantity, r.fill.time_ns)
            for r in result.reports
            if r.HasField("fill")
        ]

    assert key(direct) and key(direct) == key(replayed)
    assert figures(direct).pnl == pytest.approx(figures(replayed).pnl, abs=1e-9)


def test_backtest_is_deterministic(models) -> None:
    settings = load_settings()
    runs = [Backtest(settings, models).run(SyntheticMarket(SYMBOLS, seed=SEED).events(STEPS)) for _ in range(2)]
    a, b = runs
    assert [d.SerializeToString() for d in a.decisions] == [d.SerializeToString() for d in b.decisions]
    assert [r.SerializeToString() for r in a.reports] == [r.SerializeToString() for r in b.reports]
    assert a.equity == b.equity


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


def test_a_hard_limit_breach_halts_execution_in_the_backtest(models) -> None:
    settings = load_settings()
    limits = settings.risk.limits.model_copy(update={"max_loss_streak": 1})
    settings = settings.model_copy(update={"risk": settings.risk.model_copy(update={"limits": limits})})
    result = Backtest(settings, models).run(SyntheticMarket(SYMBOLS, seed=SEED).events(STEPS))
    assert result.halts and result.halts[0].limit == "max_loss_streak"
    assert result.halted_at_end
    halted_at = result.halts[0].time_ns
    later = [d for d in result.decisions if d.decided_time_ns > halted_at]
    assert later and not any(d.approved and d.intent.kind == 1 for d in later)  # INTENT_KIND_ENTRY
    # Signals that pass the policy meet the halt (the others fail earlier checks, as in the service).
    assert any(r.startswith("halted") for d in later for r in d.reasons)


def test_missing_models_stop_the_backtest_naming_them(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    empty = tmp_path / "models"
    empty.mkdir()
    code, _, stderr = _run(["--synthetic-steps", "10", "--models-dir", str(empty)], capsys)
    assert code == 2
    assert "manifest.json" in stderr and "BTCUSDT/h1" in stderr


def test_a_tampered_model_stops_the_backtest_naming_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    models = tmp_path / "models"
    shutil.copytree(REPO_ROOT / "models", models)
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


def test_contradictory_sources_are_refused(recording: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, stderr = _run(["--data", str(recording), "--synthetic-steps", "10"], capsys)
    assert code == 2 and "either --data or --synthetic-steps" in stderr
