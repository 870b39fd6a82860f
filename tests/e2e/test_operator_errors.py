"""Each operator error ends in one line naming what is missing or in the way and the setting to change,
with a non-zero exit and no traceback (issue 18's list)."""

from __future__ import annotations

import os
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.procs import QUANTUMEDGE, ROOT, free_port

pytestmark = pytest.mark.slow


def run(args: list[str], env: dict[str, str], timeout_s: float = 120) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("QE_") or k.endswith("_METRICS")}
    return subprocess.run(
        [*QUANTUMEDGE, *args],
        env={**clean, "QE_GRPC_HOST": "127.0.0.1", **env},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        cwd=ROOT,
    )


def last_line(result: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines, "nothing on stderr"
    return lines[-1]


@pytest.fixture
def taken_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def ports_env() -> dict[str, str]:
    return {f"QE_PORTS__{n}": str(free_port()) for n in ("INGEST", "INFERENCE", "RISK", "EXECUTION")}


@pytest.mark.parametrize(("setting", "what"), [("QE_PORTS__RISK", "risk gRPC"), ("QE_PORTS__RISK_METRICS", "metrics")])
def test_a_taken_port_names_the_setting_that_moves_it(taken_port: int, setting: str, what: str, tmp_path: Path) -> None:
    result = run(["up", "--steps", "5"], {**ports_env(), setting: str(taken_port), "QE_DATA_DIR": str(tmp_path)})
    line = last_line(result)
    assert result.returncode == 2
    assert line.startswith("quantumedge up: port_in_use:") and setting in line and str(taken_port) in line, line
    assert what.split()[-1] in line


@pytest.mark.parametrize("args", [["serve", "risk"], ["topics"]])
def test_no_broker_is_one_line_naming_the_bootstrap_setting(args: list[str]) -> None:
    dead = f"127.0.0.1:{free_port()}"
    result = run(args, {**ports_env(), "QE_BUS": "kafka", "QE_KAFKA_BOOTSTRAP": dead})
    line = last_line(result)
    assert result.returncode == 2
    assert ": no_broker:" in line and "QE_KAFKA_BOOTSTRAP" in line and dead in line, line
    # No Kafka client chatter: the probe answers before any client starts.
    assert len(result.stderr.strip().splitlines()) <= 3, result.stderr


def test_record_from_an_unreachable_binance_exits_non_zero_naming_the_url(tmp_path: Path) -> None:
    url = f"ws://127.0.0.1:{free_port()}/ws"
    result = run(
        ["record", "--source", "binance", "--first-event-timeout", "2", "--out", str(tmp_path / "rec")],
        {"QE_BINANCE_WS_URL": url},
    )
    line = last_line(result)
    assert result.returncode == 1
    assert line.startswith("quantumedge record: no_market_data:") and url in line and "QE_BINANCE_WS_URL" in line
    assert "recorded 0 events" in result.stdout


def test_config_before_a_delegated_command_reaches_it(tmp_path: Path) -> None:
    config = tmp_path / "qe.yaml"
    config.write_text("log_level: WARNING\n")
    ok = run(["--config", str(config), "train", "--help"], {})
    assert ok.returncode == 0 and "usage: quantumedge train" in ok.stdout, ok.stderr
    missing = run(["--config", str(tmp_path / "absent.yaml"), "train", "--help"], {})
    line = last_line(missing)
    assert missing.returncode == 2 and "not found" in line and "QE_CONFIG_FILE" in line, line


def test_an_operator_command_without_a_running_system_names_the_port_setting() -> None:
    ports = ports_env()
    result = run(["decisions"], ports)
    line = last_line(result)
    assert result.returncode == 2
    assert line.startswith("quantumedge decisions: service_unavailable:") and "QE_PORTS__RISK" in line, line


def test_a_changing_command_without_a_token_names_qe_operator_token() -> None:
    result = run(["halt"], ports_env())
    line = last_line(result)
    assert result.returncode == 2 and ": no_operator_token:" in line and "QE_OPERATOR_TOKEN" in line, line
