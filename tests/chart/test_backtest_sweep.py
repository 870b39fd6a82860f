"""backtestSweep: the sweep as an indexed Job (one pod per configuration) and a merge Job, restricted pods."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from quantumedge.backtest.sweep import load_sweep
from tests.chart.chartlib import CHART, HelmError, run_helm, values_args

SWEEP = {
    "grid": {"risk.limits.take_profit_bps": [8, 12], "risk.limits.stop_loss_bps": [6, 10]},
    "configs": [{"name": "wide-fees", "set": {"execution.paper_taker_fee_bps": 5}}],
}
VALUES = {
    "backtestSweep": {
        "enabled": True,
        "name": "tp-sl",
        "dataClaim": "recordings",
        "resultsClaim": "sweep-results",
        "dataRoots": ["day1", "day2"],
        "parallelism": 3,
        "sweep": SWEEP,
    }
}


@pytest.fixture(scope="module")
def values_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sweep") / "values.yaml"
    path.write_text(yaml.safe_dump(VALUES))
    return path


@pytest.fixture(scope="module")
def sweep(render, values_file: Path):
    return render([values_file])


def _pod(job: dict) -> dict:
    return job["spec"]["template"]["spec"]


def test_the_indexed_job_runs_one_pod_per_configuration(sweep, tmp_path: Path) -> None:
    job = sweep.named("Job", "quantumedge-tp-sl")
    assert job["spec"]["completionMode"] == "Indexed"
    assert job["spec"]["completions"] == 5 and job["spec"]["parallelism"] == 3
    # The chart's count is the CLI's: the sweep file the pods read names exactly `completions` configurations.
    config_map = sweep.named("ConfigMap", "quantumedge-tp-sl")
    path = tmp_path / "sweep.yaml"
    path.write_text(config_map["data"]["sweep.yaml"])
    assert len(load_sweep(path)) == 5
    (container,) = _pod(job)["containers"]
    assert container["args"] == [
        "backtest",
        "--sweep",
        "/sweep/sweep.yaml",
        "--data",
        "/data/day1",
        "/data/day2",
        "--sweep-index",
        "$(JOB_COMPLETION_INDEX)",
        "--out",
        "/results/tp-sl/parts",
    ]


def test_the_merge_job_waits_for_every_part_and_writes_one_report(sweep) -> None:
    (container,) = _pod(sweep.named("Job", "quantumedge-tp-sl-merge"))["containers"]
    args = container["args"]
    assert args[:3] == ["backtest", "--merge", "/results/tp-sl/parts"]
    assert args[args.index("--expect-parts") + 1] == "5"
    assert int(args[args.index("--merge-wait") + 1]) > 0
    assert args[args.index("--out") + 1] == "/results/tp-sl/report"


def test_sweep_pods_are_restricted_and_read_the_recordings_read_only(sweep) -> None:
    for name in ("quantumedge-tp-sl", "quantumedge-tp-sl-merge"):
        pod = _pod(sweep.named("Job", name))
        assert pod["automountServiceAccountToken"] is False
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
        (container,) = pod["containers"]
        ctx = container["securityContext"]
        assert ctx["readOnlyRootFilesystem"] is True and ctx["allowPrivilegeEscalation"] is False
        assert ctx["capabilities"]["drop"] == ["ALL"]
        mounts = {m["name"]: m for m in container["volumeMounts"]}
        assert mounts["tmp"]["mountPath"] == "/tmp"
        volumes = {v["name"]: v for v in pod["volumes"]}
        assert volumes["results"]["persistentVolumeClaim"]["claimName"] == "sweep-results"
        if "data" in mounts:
            assert mounts["data"]["readOnly"] is True and mounts["sweep"]["readOnly"] is True
            assert volumes["data"]["persistentVolumeClaim"] == {"claimName": "recordings", "readOnly": True}
    assert "data" in {v["name"] for v in _pod(sweep.named("Job", "quantumedge-tp-sl"))["volumes"]}


def test_sweep_pods_get_no_network(sweep) -> None:
    # The release's default-deny selects them and no other policy opens anything for them.
    labels = sweep.named("Job", "quantumedge-tp-sl")["spec"]["template"]["metadata"]["labels"]
    selecting = [
        p["metadata"]["name"]
        for p in sweep.of_kind("NetworkPolicy")
        if p["spec"]["podSelector"]["matchLabels"].items() <= labels.items()
    ]
    assert selecting == ["quantumedge-default-deny"]


def test_the_sweep_is_off_by_default(render) -> None:
    assert not [o for o in render().objects if "backtest-sweep" in str(o["metadata"].get("labels"))]


@pytest.mark.parametrize(
    ("set_values", "mentioned"),
    [
        (["backtestSweep.enabled=true", "backtestSweep.dataRoots={a}", "backtestSweep.resultsClaim=r"], "dataClaim"),
        (["backtestSweep.sweep.grid.risk\\.limits\\.take_profit_bps=8"], "take_profit_bps"),
        (["backtestSweep.dataRoots={../etc}"], "dataRoots"),
        (["backtestSweep.sweep.other=1"], "other"),
    ],
)
def test_wrong_sweep_values_fail_at_render_time(tools, set_values: list[str], mentioned: str) -> None:
    with pytest.raises(HelmError) as failure:
        run_helm(tools.helm, "template", "quantumedge", str(CHART), *values_args(set_values=set_values))
    assert mentioned in failure.value.stderr
