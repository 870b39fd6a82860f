"""`quantumedge backtest --sweep`: a grid of configurations over two recordings, in parallel, one report.

Each run of a sweep is the same `Backtest` a single run is: a row must equal what `quantumedge backtest`
prints for that configuration alone (set the way an operator sets it, by QE_ variables), and a Job's part
files merged must equal the sweep run on one machine.
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from quantumedge.backtest.cli import backtest_main
from quantumedge.backtest.sweep import SweepError, load_sweep, wait_for_parts, write_part
from quantumedge.ingest.recorder import Recorder
from quantumedge.ingest.synthetic import SyntheticMarket
from tests.unit.backtest.conftest import PLAN_ENV

SYMBOLS = ["BTCUSDT", "ETHUSDT"]
STEPS = 600
GRID = """
grid:
  risk.limits.take_profit_bps: [8, 12]
  risk.limits.stop_loss_bps: [6, 9]
  execution.paper_taker_fee_bps: [1, 3]
"""
COMPARED = ("events", "signals", "intents", "rejections", "orders", "fills", "round_trips", "wins")


def _record(root: Path, seed: int) -> Path:
    market = SyntheticMarket(SYMBOLS, seed=seed)
    recorder = Recorder(root, clock_ns=lambda: market.start_ns).start()
    for event in market.events(STEPS):
        assert recorder.record(event)
    recorder.stop()
    return root


@pytest.fixture(scope="module")
def recordings(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return [_record(tmp_path_factory.mktemp(f"rec-{seed}"), seed) for seed in (11, 23)]


@pytest.fixture(scope="module")
def sweep_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sweep") / "sweep.yaml"
    path.write_text(GRID)
    return path


@pytest.fixture(scope="module")
def swept(recordings: list[Path], sweep_file: Path, models_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("sweep-out")
    with pytest.MonkeyPatch.context() as mp:
        _plan(mp, models_dir)
        args = ["--sweep", str(sweep_file), "--data", *map(str, recordings), "--jobs", "2", "--out", str(out)]
        assert backtest_main(args) == 0
    return {"out": out, "rows": pq.read_table(out / "sweep.parquet").to_pylist()}


def _plan(mp: pytest.MonkeyPatch, models_dir: Path) -> None:
    # A module fixture is set up before conftest.py's function-scoped plan and registry: the same, set here
    # (the spawned workers inherit them as an operator's environment).
    for name, value in PLAN_ENV.items():
        mp.setenv(name, value)
    mp.setenv("QE_MODELS_DIR", str(models_dir))


def test_a_sweep_runs_every_configuration_over_every_recording_into_one_report(
    swept: dict, recordings: list[Path]
) -> None:
    rows = swept["rows"]
    configs = {r["config"] for r in rows}
    assert len(configs) == 8 and len(rows) == 16
    assert {(r["config"], r["source"]) for r in rows} == {(c, str(s)) for c in configs for s in recordings}
    assert all(r["events"] > 2 * STEPS for r in rows)
    merged = json.loads((swept["out"] / "sweep.json").read_text())
    assert [c["sources"] for c in merged["by_config"]] == [2] * 8
    pnls = [c["pnl"] for c in merged["by_config"]]
    assert pnls == sorted(pnls, reverse=True)  # best first
    assert merged["run"]["workers"] == 2
    # The overrides took effect: on the same market, a higher taker fee costs more per fill.
    by = {
        (
            r["set.execution.paper_taker_fee_bps"],
            r["set.risk.limits.take_profit_bps"],
            r["set.risk.limits.stop_loss_bps"],
            r["source"],
        ): r
        for r in rows
    }
    traded = [k for k, r in by.items() if k[0] == 1 and r["fills"] > 0]
    assert traded, "no configuration traded: the grid cannot show its effect"
    for key in traded:
        cheap, dear = by[key], by[(3, *key[1:])]
        assert dear["fees"] / max(1, dear["fills"]) > cheap["fees"] / cheap["fills"]


def test_a_sweep_row_equals_the_single_run_of_its_configuration(
    swept: dict, recordings: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    row = next(r for r in reversed(swept["rows"]) if r["fills"] > 0)
    monkeypatch.setenv("QE_RISK__LIMITS__TAKE_PROFIT_BPS", str(row["set.risk.limits.take_profit_bps"]))
    monkeypatch.setenv("QE_RISK__LIMITS__STOP_LOSS_BPS", str(row["set.risk.limits.stop_loss_bps"]))
    monkeypatch.setenv("QE_EXECUTION__PAPER_TAKER_FEE_BPS", str(row["set.execution.paper_taker_fee_bps"]))
    assert backtest_main(["--data", row["source"], "--out", str(tmp_path)]) == 0
    single = json.loads((tmp_path / "summary.json").read_text())
    assert {k: single[k] for k in COMPARED} == {k: row[k] for k in COMPARED}
    assert single["pnl"] == pytest.approx(row["pnl"], abs=1e-9)
    assert single["fees"] == pytest.approx(row["fees"], abs=1e-9)


def test_indexed_parts_merge_into_the_same_rows(
    swept: dict, recordings: list[Path], sweep_file: Path, tmp_path: Path
) -> None:
    # What the chart's indexed Job does: one configuration per pod, part files, then one merge.
    parts = tmp_path / "parts"
    for index in (0, 5):
        args = ["--sweep", str(sweep_file), "--data", *map(str, recordings), "--sweep-index", str(index)]
        assert backtest_main([*args, "--out", str(parts)]) == 0
    assert backtest_main(["--merge", str(parts), "--out", str(tmp_path / "merged")]) == 0
    merged = pq.read_table(tmp_path / "merged" / "sweep.parquet").to_pylist()
    names = [c.name for c in load_sweep(sweep_file)]
    expected = [r for r in swept["rows"] if r["config"] in (names[0], names[5])]
    key = lambda r: (r["config"], r["source"])  # noqa: E731
    strip = lambda r: {k: v for k, v in r.items() if k != "cpu_s"}  # noqa: E731
    assert sorted(map(strip, merged), key=key) == sorted(map(strip, expected), key=key)


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("grid:\n  risk.limits.no_such_limit: [1, 2]\n", "risk.limits.no_such_limit"),
        ("grid:\n  risk.limits.take_profit_bps: [-5]\n", "take_profit_bps"),
        ("configs:\n  - name: a\n    set: {execution.nope: 1}\n", "execution.nope"),
    ],
)
def test_a_bad_sweep_stops_before_any_run_and_names_the_setting(
    text: str, names: str, recordings: list[Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    assert backtest_main(["--sweep", str(path), "--data", str(recordings[0])]) == 2
    err = capsys.readouterr().err
    assert names in err and "Traceback" not in err


def test_sweep_files_are_checked_for_shape(tmp_path: Path) -> None:
    for text in ("[]", "grid: {a.b: []}\n", "other: 1\n", "configs:\n  - {name: x}\n  - {name: x}\n"):
        path = tmp_path / "s.yaml"
        path.write_text(text)
        with pytest.raises(SweepError):
            load_sweep(path)


def test_a_configs_only_file_has_no_extra_grid_run(tmp_path: Path) -> None:
    # The chart counts an indexed Job's completions as product(grid lengths) + len(configs): the same count.
    path = tmp_path / "s.yaml"
    path.write_text("configs:\n  - {name: a, set: {}}\n  - {name: b, set: {}}\n")
    assert [c.name for c in load_sweep(path)] == ["a", "b"]
    path.write_text("grid: {}\n")
    with pytest.raises(SweepError):
        load_sweep(path)


class _Clock:
    """A clock that moves only when the waiter sleeps; each sleep lets one pod 'finish'."""

    def __init__(self, parts: Path, finishing: list[int]) -> None:
        self.now, self.parts, self.finishing, self.slept = 0.0, parts, finishing, []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds
        if self.finishing:
            write_part(self.parts, self.finishing.pop(0), [])


def test_the_merge_waits_for_every_part_then_proceeds(tmp_path: Path) -> None:
    write_part(tmp_path, 1, [])
    clock = _Clock(tmp_path, [0, 2])
    wait_for_parts([tmp_path], 3, 60, sleep=clock.sleep, clock=clock)
    assert len(clock.slept) == 2


def test_the_merge_gives_up_naming_the_missing_parts(tmp_path: Path) -> None:
    clock = _Clock(tmp_path, [0])
    with pytest.raises(SweepError, match="part-00001"):
        wait_for_parts([tmp_path], 2, 12, sleep=clock.sleep, clock=clock)
    assert clock.now == pytest.approx(12)


def test_the_merge_refuses_parts_of_another_sweep(tmp_path: Path) -> None:
    for index in (0, 1, 7):
        write_part(tmp_path, index, [])
    with pytest.raises(SweepError, match="part-00007"):
        wait_for_parts([tmp_path], 2, 0)


def test_merge_wait_through_the_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_part(tmp_path / "parts", 0, [])
    args = ["--merge", str(tmp_path / "parts"), "--expect-parts", "2", "--merge-wait", "0"]
    assert backtest_main(args) == 2
    err = capsys.readouterr().err
    assert "part-00001" in err and "Traceback" not in err
    assert backtest_main(["--merge", str(tmp_path / "parts"), "--merge-wait", "5"]) == 2
