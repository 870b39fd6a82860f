"""A real Apache Kafka 3.9.1 broker in KRaft mode, run with `java` from the release jars on Maven Central.

Used by the test fixtures (one broker per pytest session, on free ports, data in a temp dir) and by
`tools/local_kafka.py up` (a long-lived broker for manual runs). No Docker needed: only Java 17 and Maven.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import logging
import shutil
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from types import TracebackType

from kafka import KafkaAdminClient

from tools.harness.process import (
    CACHE_DIR,
    REPO_ROOT,
    HarnessError,
    exit_reason,
    free_port,
    make_temp_dir,
    port_is_free,
    port_is_open,
    spawn,
    tail,
    terminate,
    wait_until,
)

KAFKA_VERSION = "3.9.1"
POM = REPO_ROOT / "tools" / "kafka" / "pom.xml"
KAFKA_CACHE = CACHE_DIR / "kafka"
LIBS_DIR = KAFKA_CACHE / "libs"
_COMPLETE_MARKER = ".complete"  # holds the pom's hash: a changed pom or a half-finished fetch means fetch again

log = logging.getLogger(__name__)


def _pom_digest() -> str:
    return hashlib.sha256(POM.read_bytes()).hexdigest()


def _libs_complete(libs: Path, digest: str) -> bool:
    marker = libs / _COMPLETE_MARKER
    return marker.is_file() and marker.read_text().strip() == digest and any(libs.glob("kafka_2.13-*.jar"))


def ensure_kafka_jars(libs: Path = LIBS_DIR, *, timeout_s: float = 300.0) -> Path:
    """Return the folder with the Kafka release jars, fetching them with Maven only when missing.

    Safe to call from several processes at once (a file lock serialises the fetch).
    """
    digest = _pom_digest()
    if _libs_complete(libs, digest):
        return libs
    mvn = shutil.which("mvn")
    if mvn is None:
        raise HarnessError(
            "Kafka: the release jars are not cached in "
            f"{libs} and Maven (`mvn`) is not on PATH to fetch them (apt-get install maven)"
        )
    libs.parent.mkdir(parents=True, exist_ok=True)
    with _file_lock(libs.parent / ".fetch.lock", timeout_s=timeout_s):
        if _libs_complete(libs, digest):  # another process fetched them while we waited
            return libs
        staging = Path(tempfile.mkdtemp(prefix="libs-fetch-", dir=libs.parent))
        argv = [
            mvn,
            "-q",
            "-B",
            "-f",
            str(POM),
            "dependency:copy-dependencies",
            f"-DoutputDirectory={staging}",
            "-DincludeScope=runtime",
        ]
        started = time.monotonic()
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout_s, check=False)
        except subprocess.TimeoutExpired as exc:
            shutil.rmtree(staging, ignore_errors=True)
            raise HarnessError(f"Kafka: Maven took over {timeout_s:.0f} s to fetch the {KAFKA_VERSION} jars") from exc
        if done.returncode != 0 or not any(staging.glob("kafka_2.13-*.jar")):
            shutil.rmtree(staging, ignore_errors=True)
            output = "\n".join((done.stdout + done.stderr).splitlines()[-30:])
            raise HarnessError(
                f"Kafka: `mvn dependency:copy-dependencies` on {POM} failed (exit {done.returncode}); "
                f"is Maven Central reachable?\n{output}"
            )
        (staging / _COMPLETE_MARKER).write_text(digest + "\n")
        shutil.rmtree(libs, ignore_errors=True)
        staging.rename(libs)
        log.info("fetched Kafka %s jars in %.1f s", KAFKA_VERSION, time.monotonic() - started)
    return libs


@contextlib.contextmanager
def _file_lock(path: Path, *, timeout_s: float):
    with path.open("a+") as fh:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise HarnessError(f"Kafka: timed out waiting for another jar fetch (lock {path})") from None
                time.sleep(0.5)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def new_cluster_id() -> str:
    """A KRaft cluster id: 16 random bytes in Kafka's Uuid text form (URL-safe base64, no padding).

    Never one that starts with "-": the storage tool would read it as an option (Kafka's own generator
    skips those too)."""
    while True:
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cid.startswith("-"):
            return cid


def server_properties(*, port: int, controller_port: int, data_dir: Path, extra: dict[str, str] | None = None) -> str:
    """A single-node KRaft (broker+controller) config tuned for tests: RF 1, no rebalance delay, small buffers."""
    props: dict[str, str] = {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.voters": f"1@127.0.0.1:{controller_port}",
        "listeners": f"PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}",
        "advertised.listeners": f"PLAINTEXT://127.0.0.1:{port}",
        "inter.broker.listener.name": "PLAINTEXT",
        "controller.listener.names": "CONTROLLER",
        "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        "log.dirs": str(data_dir),
        "num.partitions": "3",
        "default.replication.factor": "1",
        "auto.create.topics.enable": "true",
        "delete.topic.enable": "true",
        "min.insync.replicas": "1",
        "offsets.topic.replication.factor": "1",
        # Fewer internal partitions: the first consumer group on a fresh broker is ready sooner.
        "offsets.topic.num.partitions": "5",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "transaction.state.log.num.partitions": "5",
        "group.initial.rebalance.delay.ms": "0",
        # Lets tests use short consumer session timeouts (default minimum is 6 s).
        "group.min.session.timeout.ms": "1000",
        "num.network.threads": "2",
        "num.io.threads": "4",
        "num.recovery.threads.per.data.dir": "1",
        "log.cleaner.threads": "1",
        # The default 128 MB dedupe buffer would take a quarter of the 512 MB heap.
        "log.cleaner.dedupe.buffer.size": str(16 * 1024 * 1024),
        "log.retention.hours": "24",
    }
    props.update(extra or {})
    return "".join(f"{key}={value}\n" for key, value in props.items())


def log4j_properties(log_file: Path) -> str:
    """Kafka 3.9 logs through reload4j (log4j 1.x API): everything to one rolling file, nothing to the console."""
    return f"""\
log4j.rootLogger=INFO, file
log4j.appender.file=org.apache.log4j.RollingFileAppender
log4j.appender.file.File={log_file}
log4j.appender.file.MaxFileSize=20MB
log4j.appender.file.MaxBackupIndex=2
log4j.appender.file.layout=org.apache.log4j.PatternLayout
log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka.request.logger=WARN
log4j.logger.state.change.logger=WARN
log4j.logger.org.apache.kafka.clients=WARN
"""


def kafka_is_ready(bootstrap: str, *, timeout_s: float = 5.0, **client_config: object) -> tuple[bool, str]:
    """Ask the broker for cluster metadata with kafka-python. Returns (ready, reason when not).

    `client_config` carries the security settings (SASL, TLS) of a secured listener."""
    admin = None
    try:
        admin = KafkaAdminClient(
            bootstrap_servers=bootstrap,
            client_id="qe-harness-probe",
            bootstrap_timeout_ms=int(timeout_s * 1000),
            request_timeout_ms=int(timeout_s * 1000),
            **client_config,
        )
        brokers = admin.describe_cluster().get("brokers") or []
        if not brokers:
            return False, "metadata lists no unfenced broker yet"
        admin.list_topics()
        return True, ""
    except Exception as exc:  # any client error just means "not ready yet"
        return False, f"{type(exc).__name__}: {exc}"
    finally:
        if admin is not None:
            with contextlib.suppress(Exception):
                admin.close()


class LocalKafka:
    """A single-node KRaft Kafka broker process on 127.0.0.1.

    with LocalKafka() as kafka:           # free ports, temp data dir, removed on exit
        use(kafka.bootstrap)

    detach=True (the `up` command) starts it in its own session so it outlives this Python process.
    """

    def __init__(
        self,
        port: int | None = None,
        *,
        work_dir: Path | None = None,
        detach: bool = False,
        heap: str = "512m",
        start_timeout_s: float = 180.0,
        stop_timeout_s: float = 20.0,
        extra_config: dict[str, str] | None = None,
    ) -> None:
        self.requested_port = port
        self.port: int | None = None
        self.controller_port: int | None = None
        self.detach = detach
        self.heap = heap
        self.start_timeout_s = start_timeout_s
        self.stop_timeout_s = stop_timeout_s
        self.extra_config = extra_config
        self._given_work_dir = work_dir
        self.work_dir: Path | None = None
        self.process: subprocess.Popen[bytes] | None = None
        self.fetch_seconds: float | None = None
        self.start_seconds: float | None = None

    # -- public -------------------------------------------------------------------------------------------------

    @property
    def bootstrap(self) -> str:
        if self.port is None:
            raise HarnessError("Kafka: broker not started")
        return f"127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    @property
    def log_path(self) -> Path | None:
        return self.work_dir / "logs" / "server.log" if self.work_dir is not None else None

    def start(self) -> LocalKafka:
        java = shutil.which("java")
        if java is None:
            raise HarnessError("Kafka: `java` is not on PATH (the local broker needs Java 17+)")
        fetch_started = time.monotonic()
        libs = ensure_kafka_jars()
        self.fetch_seconds = time.monotonic() - fetch_started
        if self.requested_port is not None and not port_is_free(self.requested_port):
            raise HarnessError(f"Kafka: port {self.requested_port} on 127.0.0.1 is already in use")
        # Auto-picked ports can be taken by someone else between picking and binding: try again once.
        attempts = 1 if self.requested_port is not None else 2
        for attempt in range(1, attempts + 1):
            try:
                self._start_once(java, libs)
                return self
            except HarnessError as exc:
                if attempt < attempts and "Address already in use" in str(exc):
                    log.warning("Kafka: port race on start, retrying with new ports")
                    self._remove_temp_work_dir()
                    continue
                raise
        raise AssertionError("unreachable")

    def stop(self) -> None:
        if self.process is not None:
            terminate(self.process.pid, grace_s=self.stop_timeout_s, process=self.process)
            self.process = None
        self._remove_temp_work_dir()

    def __enter__(self) -> LocalKafka:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- hooks for a secured broker (tools/harness/kafka_secure.py) ------------------------------------------------

    def _listener_config(self) -> dict[str, str]:
        """Broker properties that depend on the ports and the work dir (listeners, TLS files); none here."""
        return {}

    def _format_args(self) -> list[str]:
        """More `StorageTool format` arguments (e.g. SCRAM credentials); none here."""
        return []

    def _probe(self) -> tuple[bool, str]:
        return kafka_is_ready(self.bootstrap)

    # -- internals ----------------------------------------------------------------------------------------------

    def _remove_temp_work_dir(self) -> None:
        if self.work_dir is not None and self._given_work_dir is None:
            shutil.rmtree(self.work_dir, ignore_errors=True)
            self.work_dir = None

    def _prepare_work_dir(self) -> Path:
        if self._given_work_dir is not None:
            work = self._given_work_dir
            # A fresh, throwaway cluster every start: old data from another cluster id would not load.
            for sub in ("data", "logs"):
                shutil.rmtree(work / sub, ignore_errors=True)
            work.mkdir(parents=True, exist_ok=True)
        else:
            work = make_temp_dir("qe-kafka-")
        (work / "logs").mkdir(exist_ok=True)
        return work

    def _java_argv(self, java: str, libs: Path, *, main: str, heap: str, short_lived: bool) -> list[str]:
        assert self.work_dir is not None
        opts = [
            f"-Xmx{heap}",
            "-XX:+ExitOnOutOfMemoryError",
            "-Djava.awt.headless=true",
            f"-Dlog4j.configuration=file:{self.work_dir / 'log4j.properties'}",
            f"-Dkafka.logs.dir={self.work_dir / 'logs'}",
        ]
        if short_lived:
            # The storage formatter runs for a second: the C1 compiler and serial GC start fastest.
            opts += ["-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC"]
        else:
            opts += ["-Xms128m", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20"]
        return [java, *opts, "-cp", f"{libs}/*", main]

    def _start_once(self, java: str, libs: Path) -> None:
        self.port = self.requested_port or free_port()
        self.controller_port = free_port()
        while self.controller_port == self.port:
            self.controller_port = free_port()
        self.work_dir = self._prepare_work_dir()
        config = self.work_dir / "server.properties"
        config.write_text(
            server_properties(
                port=self.port,
                controller_port=self.controller_port,
                data_dir=self.work_dir / "data",
                extra={**self._listener_config(), **(self.extra_config or {})},
            )
        )
        assert self.log_path is not None
        (self.work_dir / "log4j.properties").write_text(log4j_properties(self.log_path))
        started = time.monotonic()
        self._format_storage(java, libs, config)
        console = self.work_dir / "logs" / "console.log"  # JVM-level errors that happen before log4j is up
        self._launch(java, libs, config, console)
        self.start_seconds = time.monotonic() - started

    def kill(self) -> None:
        """SIGKILL the broker (a crash), keeping its ports, config and data: restart() brings the same one back."""
        if self.process is not None:
            self.process.kill()
            self.process.wait(30)
            self.process = None

    def restart(self) -> None:
        """Start the broker killed by kill() again on the same ports and data dir, and wait until it answers."""
        java, libs = shutil.which("java"), ensure_kafka_jars()
        assert java is not None and self.work_dir is not None and self.process is None
        self._launch(java, libs, self.work_dir / "server.properties", self.work_dir / "logs" / "console.log")

    def _launch(self, java: str, libs: Path, config: Path, console: Path) -> None:
        argv = [*self._java_argv(java, libs, main="kafka.Kafka", heap=self.heap, short_lived=False), str(config)]
        self.process = spawn(argv, output=console, cwd=self.work_dir, detach=self.detach)
        last_reason = ""

        def ready() -> bool:
            nonlocal last_reason
            assert self.port is not None
            if not port_is_open(self.port):
                last_reason = f"nothing listens on 127.0.0.1:{self.port} yet"
                return False
            ok, last_reason = self._probe()
            return ok

        def alive() -> str | None:
            assert self.process is not None
            return exit_reason(self.process)

        try:
            wait_until(ready, timeout_s=self.start_timeout_s, interval_s=0.25, alive=alive)
        except (TimeoutError, HarnessError) as exc:
            self._fail(f"{exc}; last probe: {last_reason}" if last_reason else str(exc), console)

    def _format_storage(self, java: str, libs: Path, config: Path) -> None:
        argv = [
            *self._java_argv(java, libs, main="kafka.tools.StorageTool", heap="256m", short_lived=True),
            "format",
            "--cluster-id",
            new_cluster_id(),
            "--config",
            str(config),
            *self._format_args(),
        ]
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False, cwd=self.work_dir)
        except subprocess.TimeoutExpired as exc:
            raise HarnessError("Kafka: `StorageTool format` did not finish within 120 s") from exc
        if done.returncode != 0:
            output = "\n".join((done.stdout + done.stderr).splitlines()[-20:])
            work_dir = self.work_dir
            self._remove_temp_work_dir()  # everything worth keeping is in the message
            raise HarnessError(
                f"Kafka: formatting KRaft storage in {work_dir} failed (exit {done.returncode}):\n{output}"
            )

    def _fail(self, reason: str, console: Path) -> None:
        pid = self.pid
        if self.process is not None:
            terminate(self.process.pid, grace_s=5.0, process=self.process)
            self.process = None
        # Keep the work dir: its logs are what the message below points at.
        raise HarnessError(
            f"Kafka broker (pid {pid}) on {self.bootstrap} did not become ready: {reason}\n"
            f"--- last lines of {self.log_path} ---\n{tail(self.log_path)}\n"
            f"--- last lines of {console} ---\n{tail(console, 15)}"
        )


def java_version() -> str:
    """`java -version` first line, for status output."""
    java = shutil.which("java")
    if java is None:
        return "java not found"
    done = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=30, check=False)
    return (done.stderr or done.stdout).splitlines()[0] if (done.stderr or done.stdout) else "unknown"
