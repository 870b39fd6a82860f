"""A backtest sweep as a release of its own (docs/kubernetes.md, "Backtest sweeps as a Job"), on the real API
server: the documented install, word for word, in a namespace that enforces PodSecurity `restricted`; the
indexed Job's controller creates the pods and the API server admits them; the uninstall leaves nothing.

kwok runs no container, so no pod writes a part or a report here; the sweep's arithmetic and merge are
tests/unit/backtest/test_sweep.py, its manifests tests/chart/test_backtest_sweep.py."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from tests.chart.chartlib import REPO_ROOT
from tests.chart.doccommands import SWEEP, documented, exercised_by
from tests.cluster.conftest import RESTRICTED, namespace
from tests.support.waiting import wait_for

SWEEP_NS = "backtests"
RELEASE = "sweep-tp-sl"


def _owned(prepared, kind: str) -> list[dict]:
    out = prepared.kubectl("get", kind, "-n", SWEEP_NS, "-l", f"app.kubernetes.io/instance={RELEASE}", "-o", "json")
    return json.loads(out.stdout)["items"]


def test_a_sweep_installs_as_its_own_restricted_release_and_uninstalls_cleanly(prepared, helm, step) -> None:
    install, uninstall = (c for _, c in documented() if exercised_by(c) == SWEEP)
    assert install.startswith("helm install") and uninstall.startswith("helm uninstall")
    namespace(prepared, SWEEP_NS, RESTRICTED)
    path = f"{helm.parent}:{prepared.kubectl_dir()}:{Path(sys.executable).parent}:/usr/bin:/bin"
    with step(f"documented: {install[:90]}"):
        done = prepared.run(["bash", "-c", install], check=False, cwd=REPO_ROOT, extra_env={"PATH": path})
        assert done.returncode == 0, done.stderr[-2500:]
    jobs = {j["metadata"]["name"]: j for j in _owned(prepared, "jobs")}
    sweep, merge = jobs[f"{RELEASE}-quantumedge-tp-sl"], jobs[f"{RELEASE}-quantumedge-tp-sl-merge"]
    assert sweep["spec"]["completionMode"] == "Indexed" and sweep["spec"]["completions"] == 5
    assert "--expect-parts" in merge["spec"]["template"]["spec"]["containers"][0]["args"]
    # The Job controller made the sweep's pods and `restricted` admitted them: nothing in them is refused.
    with step("sweep pods admitted under PodSecurity restricted"):
        wait_for(lambda: len(_owned(prepared, "pods")) >= 2, timeout_s=60, what="the sweep's pods", interval_s=1.0)
    for pod in _owned(prepared, "pods"):
        assert pod["spec"].get("priorityClassName") in (None, "")  # never the trading services' priority
        assert pod["spec"]["automountServiceAccountToken"] is False
    with step(f"documented: {uninstall}"):
        done = prepared.run(["bash", "-c", uninstall], check=False, cwd=REPO_ROOT, extra_env={"PATH": path})
        assert done.returncode == 0, done.stderr[-2500:]
    gone = lambda: not _owned(prepared, "jobs") and not _owned(prepared, "configmaps")  # noqa: E731
    wait_for(gone, timeout_s=60, what="the sweep release's objects gone", interval_s=1.0)
