"""`quantumedge record`: a source straight to Parquet files, no Kafka."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from quantumedge.cli import main as cli_main
from quantumedge.ingest.record_cli import record_main
from quantumedge.shared.market_files import read_table, recorded_files, table_to_events
from tests.peers.binance_market import BinanceMarketPeer


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
