"""`quantumedge record`: a source straight to Parquet files, no Kafka."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from quantumedge.cli import main as cli_main
from quantumedge.ingest.capture import CaptureSource
from quantumedge.record_cli import record_main
from quantumedge.shared.market_files import read_table, recorded_files, table_to_events
from tests.peers.binance_market import BinanceMarketPeer
from tests.support.captures import Capture


def test_record_synthetic_to_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "rec"
    code = record_main(["--source", "synthetic", "--steps", "40", "--symbols", "BTCUSDT,ETHUSDT", "--out", str(out)])
    assert code == 0
    files = recorded_files(out)
    assert {f.relative_to(out).parts[0] for f in files} == {"symbol=BTCUSDT", "symbol=ETHUSDT"}
    events = list(table_to_events(read_table(files)))
    assert sum(e.HasField("depth") for e in events) == 80
    assert "recorded" in capsys.readouterr().out


def test_record_from_binance_through_the_flat_env_urls(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with BinanceMarketPeer(["BTCUSDT"], seed=3) as peer:
        monkeypatch.setenv("QE_BINANCE_WS_URL", peer.ws_url)
        monkeypatch.setenv("QE_BINANCE_REST_URL", peer.rest_url)
        result: list[int] = []
        args = ["--source", "binance", "--symbols", "BTCUSDT", "--out", str(tmp_path), "--max-events", "12"]
        thread = threading.Thread(target=lambda: result.append(record_main(args)), daemon=True)
        thread.start()
        while thread.is_alive():
            if peer.active_connections:
                peer.push_all(1)
            thread.join(0.05)
    assert result == [0]
    events = list(table_to_events(read_table(recorded_files(tmp_path, "BTCUSDT"))))
    assert len(events) >= 12 and {e.source for e in events} == {"binance"}
    assert "from binance" in capsys.readouterr().out


def test_record_help_through_the_console_script(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        cli_main(["record", "--help"])
    assert done.value.code == 0
    assert "--max-events" in capsys.readouterr().out


def test_record_refuses_to_replay_into_its_own_input() -> None:
    assert record_main(["--source", "replay"]) == 2  # the default replay path is the default record dir


def test_record_a_real_capture_through_the_live_parser(
    binance_capture: Capture, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = binance_capture.path("ETHUSDT")
    out = tmp_path / "rec"
    assert record_main(["--source", "capture", "--capture", str(path), "--symbols", "ETHUSDT", "--out", str(out)]) == 0
    recorded = list(table_to_events(read_table(recorded_files(out, "ETHUSDT"))))
    replayed = list(CaptureSource(path).events())
    assert len(recorded) == len(replayed) > 30_000
    # The recording keeps the capture's own times (no restamp), so it can be trained and tested on as is.
    assert recorded[0].receive_time_ns == replayed[0].receive_time_ns
    assert {e.source for e in recorded} == {"capture"}
    assert "from capture" in capsys.readouterr().out


def test_record_names_a_missing_capture(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert record_main(["--capture", str(tmp_path / "absent.gz"), "--out", str(tmp_path / "o")]) == 2
    assert "capture not found" in capsys.readouterr().err
