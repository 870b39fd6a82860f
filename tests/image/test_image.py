"""The image as the chart runs it: four containers (ingest, inference, risk, execution) with the chart's
security settings (read-only root, uid/gid 10001, every capability dropped, no privilege escalation) and the
chart's own environment (rendered from the dev values), on a bridge network of their own with a real Kafka
broker (the testcontainers Kafka image). Synthetic ticks become paper fills; each service reports SERVING
within its cold start, which is printed; the chart's `helm test` command passes against them; each
container drains on SIGTERM and exits 0.
"""

from __future__ import annotations

import datetime
import subprocess
import time
import uuid
from collections.abc import Iterator

import pytest
import yaml

from quantumedge.shared import topics
from quantumedge.shared.bus.kafka import KafkaBus
from quantumedge.shared.config import KafkaSettings
from quantumedge.shared.health_check import check
from quantumedge.shared.signing import SigningKey
from quantumedge.v1 import execution_pb2
from tests.chart.chartlib import CI_VALUES, run_helm, values_args
from tests.harness.containers import kafka_container
from tests.image.conftest import FIGURES, docker
from tools import chart_tools
from tools.harness.process import free_port

# Downstream first, so nothing upstream publishes goes unheard.
ORDER = ("risk", "execution", "inference", "ingest")
RELEASE = "qe"
FULLNAME = "qe-quantumedge"
IMAGE_SIZE_LIMIT = 300_000_000
# Risk's key pair, as an operator without Vault supplies it (docs/kubernetes.md, the chart's NOTES): the public
# half as signing.publicKeys, the private half in a Secret the chart names (here: handed over as that Secret would).
SIGNING_KEY = SigningKey.generate("image-test")
SIGNING_SECRET = "qe-it-signing"
SECRETS = {(SIGNING_SECRET, "private-key"): f"{SIGNING_KEY.key_id}:{SIGNING_KEY.seed_b64()}"}


def rendered_chart(kafka: str) -> list[dict]:
    helm = chart_tools.ensure_helm()
    signing = [f"signing.publicKeys={SIGNING_KEY.key_id}:{SIGNING_KEY.public_b64()}"]
    signing.append(f"signing.privateKeySecret={SIGNING_SECRET}")
    # No Kubernetes API behind `docker run`: execution runs unfenced (one replica); make cluster-test covers the Lease.
    args = values_args(["dev-values.yaml"], [f"kafka.bootstrap={kafka}", "executorLease.backend=none", *signing])
    out = run_helm(helm, "template", RELEASE, str(CI_VALUES.parent), *args).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


def docker_flags(spec: dict, container: dict) -> list[str]:
    """The pod's and container's security context as `docker run` flags (and fail on one we cannot map)."""
    pod, ctx = spec["securityContext"], container["securityContext"]
    assert ctx["readOnlyRootFilesystem"] is True and ctx["allowPrivilegeEscalation"] is False
    assert ctx["capabilities"] == {"drop": ["ALL"]} and ctx["privileged"] is False
    assert ctx["seccompProfile"] == {"type": "RuntimeDefault"}  # Docker's default seccomp profile
    assert pod["runAsNonRoot"] and ctx["runAsNonRoot"]
    flags = ["--read-only", "--user", f"{ctx['runAsUser']}:{ctx['runAsGroup']}", "--cap-drop", "ALL"]
    flags += ["--security-opt", "no-new-privileges"]
    for mount in container.get("volumeMounts", []):  # emptyDir volumes of the pod: tmpfs here
        flags += ["--tmpfs", f"{mount['mountPath']}:rw,size=64m,uid={ctx['runAsUser']},gid={ctx['runAsGroup']}"]
    return flags


def container_env(container: dict, name: str) -> list[str]:
    out = []
    for env in container["env"]:
        if "value" in env:
            out += ["-e", f"{env['name']}={env['value']}"]
        elif env.get("valueFrom", {}).get("fieldRef"):
            field = env["valueFrom"]["fieldRef"]["fieldPath"]
            out += ["-e", f"{env['name']}={name if field == 'metadata.name' else 'image-test'}"]
        elif ref := env.get("valueFrom", {}).get("secretKeyRef"):
            out += ["-e", f"{env['name']}={SECRETS[(ref['name'], ref['key'])]}"]
        else:
            raise AssertionError(f"cannot map env {env} of {name}")
    return out


def started_at(container_id: str) -> datetime.datetime:
    text = docker("inspect", "-f", "{{.State.StartedAt}}", container_id).stdout.strip()
    return datetime.datetime.fromisoformat(text[:26].rstrip("Z") + "+00:00")


def wait_serving(
    address: str, service: str, container_id: str, timeout_s: float = 120.0
) -> tuple[datetime.datetime, datetime.datetime]:
    """(when the gRPC server first answered at all, when `service` answered SERVING); the container's log
    tail in the failure, which teardown's `docker rm` would otherwise lose."""
    deadline = time.monotonic() + timeout_s
    next_state_check = time.monotonic() + 2.0
    answered = None
    while time.monotonic() < deadline:
        answer = check(address, service, timeout_s=0.5)
        now = datetime.datetime.now(datetime.UTC)
        if answered is None and answer.status in ("SERVING", "NOT_SERVING", "SERVICE_UNKNOWN"):
            answered = now
        if answer.serving:
            return answered or now, now
        if time.monotonic() >= next_state_check:  # a container that exited will never answer: say so now
            next_state_check = time.monotonic() + 2.0
            if _running(container_id) is False:
                break
        time.sleep(0.02)
    logs = docker("logs", "--tail", "80", container_id, check=False)
    state = docker("inspect", "-f", "{{json .State}}", container_id, check=False).stdout.strip()
    raise AssertionError(
        f"{service} at {address} never reported SERVING; container state {state}; "
        f"docker logs --tail 80:\n{logs.stdout}{logs.stderr}"
    )


def _running(container_id: str) -> bool | None:
    done = docker("inspect", "-f", "{{.State.Running}}", container_id, check=False)
    return None if done.returncode else done.stdout.strip() == "true"


@pytest.fixture(scope="module")
def pipeline(image: str, network: str) -> Iterator[dict]:
    run_id = uuid.uuid4().hex[:6]
    with kafka_container(network=network, alias="kafka") as kafka:
        objects = rendered_chart(kafka.internal)
        deployments = {
            d["metadata"]["labels"]["app.kubernetes.io/component"]: d for d in objects if d["kind"] == "Deployment"
        }
        started: dict[str, str] = {}
        cold: dict[str, float] = {}
        up: dict[str, float] = {}
        ports: dict[str, int] = {}
        try:
            _create_topics(image, network, objects, run_id)
            for name in ORDER:
                spec = deployments[name]["spec"]["template"]["spec"]
                (container,) = spec["containers"]
                port = container["ports"][0]["containerPort"]
                ports[name] = free_port()
                argv = [
                    "run",
                    "-d",
                    "--name",
                    f"qe-it-{name}-{run_id}",
                    "--network",
                    network,
                    "--network-alias",
                    f"{FULLNAME}-{name}",
                    "-p",
                    f"127.0.0.1:{ports[name]}:{port}",
                    *docker_flags(spec, container),
                    *container_env(container, name),
                    # Paced synthetic market, ten times real time, so fills come within the test.
                    "-e",
                    "QE_INGEST__SYNTHETIC_STEPS=0",
                    "-e",
                    "QE_INGEST__SYNTHETIC_SPEED=10",
                    image,
                    *container["args"],
                ]
                cid = docker(*argv).stdout.strip()
                started[name] = cid
                answered, serving = wait_serving(
                    f"127.0.0.1:{ports[name]}", f"quantumedge.v1.{name.title()}Service", cid
                )
                t0 = started_at(cid)
                cold[name] = (serving - t0).total_seconds()
                up[name] = (answered - t0).total_seconds()
            for name in ORDER:
                FIGURES.append(
                    (
                        f"cold start {name}: gRPC up / SERVING (models, Kafka joined)",
                        f"{up[name]:.2f} s / {cold[name]:.2f} s",
                    )
                )
            yield {"kafka": kafka, "containers": started, "ports": ports, "objects": objects, "cold": cold}
        finally:
            for name, cid in started.items():
                logs = docker("logs", "--tail", "15", cid, check=False)
                print(f"--- {name} ---\n{(logs.stdout + logs.stderr)[-2500:]}")
                docker("rm", "-f", cid, check=False)


def _create_topics(image: str, network: str, objects: list[dict], run_id: str) -> None:
    """The chart's topic hook Job, run as its container: `quantumedge topics` with the Job's env."""
    (job,) = [o for o in objects if o["kind"] == "Job"]
    spec = job["spec"]["template"]["spec"]
    (container,) = spec["containers"]
    done = docker(
        "run",
        "--rm",
        "--name",
        f"qe-it-topics-{run_id}",
        "--network",
        network,
        *docker_flags(spec, container),
        *container_env(container, "topics"),
        image,
        *container["args"],
        timeout_s=180,
    )
    assert done.returncode == 0


def test_image_size_is_within_the_limit(image: str) -> None:
    size = int(docker("image", "inspect", "-f", "{{.Size}}", image).stdout)
    FIGURES.append(("image size (uncompressed, as docker images shows it)", f"{size / 1e6:.0f} MB"))
    # What a node pulls: the layers compressed (gzip, as registries store them).
    save = subprocess.Popen(["docker", "save", image], stdout=subprocess.PIPE)
    pulled = subprocess.run(["gzip", "-6"], stdin=save.stdout, stdout=subprocess.PIPE, check=True).stdout
    assert save.wait() == 0
    FIGURES.append(("image size compressed (docker save | gzip: what a node pulls)", f"{len(pulled) / 1e6:.0f} MB"))
    assert size <= IMAGE_SIZE_LIMIT, f"{image} is {size / 1e6:.0f} MB, over {IMAGE_SIZE_LIMIT / 1e6:.0f} MB"


def test_image_runs_as_the_chart_runs_it(image: str) -> None:
    config = yaml.safe_load(docker("image", "inspect", "-f", "{{json .Config}}", image).stdout)
    assert config["User"] == "10001:10001"
    assert config["Entrypoint"] == ["quantumedge"] and config["Cmd"] == ["serve", "ingest"]
    assert config["StopSignal"] == "SIGTERM"
    helped = docker("run", "--rm", "--network", "none", "--read-only", image, "--help")
    assert "serve" in helped.stdout and "health" in helped.stdout
    # No shell and no package manager in the image.
    for program in ("/bin/sh", "/usr/bin/apt-get", "/usr/bin/dpkg", "/opt/venv/bin/pip"):
        done = docker("run", "--rm", "--network", "none", "--entrypoint", program, image, "--version", check=False)
        assert done.returncode != 0, f"{program} exists in the image"


def test_ticks_become_fills(pipeline: dict) -> None:
    bus = KafkaBus(KafkaSettings(bootstrap=pipeline["kafka"].bootstrap, allow_plaintext=True, topic_prefix=""))
    try:
        deadline = time.monotonic() + 300
        fills: list = []
        while time.monotonic() < deadline and not fills:
            reports = [execution_pb2.ExecutionReport.FromString(r.value) for r in bus.read_all(topics.REPORTS)]
            fills = [r for r in reports if r.HasField("fill")]
            time.sleep(2)
        assert fills, "no paper fill on execution.reports.v1 within 300 s"
        assert all(f.fill.quantity > 0 and f.fill.price > 0 for f in fills)
        assert bus.read_all(topics.TRADES) and bus.read_all(topics.SIGNALS)
        FIGURES.append(("paper fills seen on execution.reports.v1", str(len(fills))))
    finally:
        bus.close()


def test_the_charts_helm_test_command_passes_against_the_containers(pipeline: dict, image: str, network: str) -> None:
    (pod,) = [o for o in pipeline["objects"] if o["kind"] == "Pod"]
    spec = pod["spec"]
    for container in spec["containers"]:
        done = docker(
            "run", "--rm", "--network", network, *docker_flags(spec, container), image, *container["args"], check=False
        )
        assert done.returncode == 0, done.stdout + done.stderr
        assert "SERVING" in done.stdout


def test_each_container_drains_on_sigterm_and_exits_zero(pipeline: dict) -> None:
    for name in reversed(ORDER):  # upstream first, as a rollout would
        cid = pipeline["containers"][name]
        t0 = time.monotonic()
        docker("stop", "--time", "60", cid, timeout_s=90)  # SIGTERM (the image's STOPSIGNAL), SIGKILL after 60 s
        took = time.monotonic() - t0
        state = yaml.safe_load(docker("inspect", "-f", "{{json .State}}", cid).stdout)
        assert state["ExitCode"] == 0 and not state["OOMKilled"], (name, state)
        FIGURES.append((f"drain on SIGTERM -> exit 0: {name}", f"{took:.1f} s"))
