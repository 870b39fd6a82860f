"""The console in a real headless Chromium (Debian's, driven by Playwright) on a running `quantumedge up`:
sign in with the operator token, see positions and decisions, explain one, halt and resume with a
confirmation each (audited under the operator's name), screenshots saved; without a session every request
gets the login page and changes nothing."""

from __future__ import annotations

import hashlib
import os
import secrets
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
import requests

from quantumedge.v1 import execution_pb2, execution_pb2_grpc, risk_pb2, risk_pb2_grpc
from tests.support.procs import free_port, spawn, stop, wait_serving

pytestmark = pytest.mark.slow

CHROMIUM = os.environ.get("QE_TEST_CHROMIUM", "/usr/bin/chromium")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SERVICES = ("ingest", "inference", "risk", "execution")


def wait_until(check, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    if not (os.path.exists(CHROMIUM) or shutil.which("chromium")):
        pytest.skip(f"Debian's chromium is not installed at {CHROMIUM} (make test installs it with apt-get)")
    tmp = tmp_path_factory.mktemp("console")
    token = secrets.token_hex(24)
    ports = {name: free_port() for name in SERVICES}
    env = {
        "QE_GRPC_HOST": "127.0.0.1",
        "QE_DATA_DIR": str(tmp / "var"),
        "QE_INGEST__SYNTHETIC_SPEED": "5",
        "QE_VAULT__OPERATOR_TOKEN_SHA256": f"alice:{hashlib.sha256(token.encode()).hexdigest()}",
        **{f"QE_PORTS__{n.upper()}": str(p) for n, p in ports.items()},
        **{f"QE_PORTS__{n.upper()}_METRICS": str(free_port()) for n in SERVICES},
    }
    up = spawn(["up", "--steps", "0"], env, tmp / "up.log")
    console_port = free_port()
    console = spawn(["console"], {**env, "QE_PORTS__CONSOLE": str(console_port)}, tmp / "console.log")
    channels = {n: grpc.insecure_channel(f"127.0.0.1:{p}") for n, p in ports.items()}
    try:
        for port in ports.values():
            wait_serving(port, proc=up)
        url = f"http://127.0.0.1:{console_port}"
        wait_until(lambda: _answers(url), 60, "the console")
        execution = execution_pb2_grpc.ExecutionServiceStub(channels["execution"])
        wait_until(
            lambda: execution.GetStatus(execution_pb2.ExecutionServiceGetStatusRequest(), timeout=5).fills > 0,
            240,
            "a first fill",
        )
        yield {
            "url": url,
            "token": token,
            "tmp": tmp,
            "risk": risk_pb2_grpc.RiskServiceStub(channels["risk"]),
            "up_log": tmp / "up.log",
        }
    finally:
        for channel in channels.values():
            channel.close()
        stop(console)
        stop(up)


def _answers(url: str) -> bool:
    try:
        return requests.get(f"{url}/login", timeout=2).status_code == 200
    except requests.RequestException:
        return False


def halted(system: dict) -> bool:
    return system["risk"].GetStatus(risk_pb2.RiskServiceGetStatusRequest(), timeout=5).halted


@pytest.fixture
def browser(system: dict, tmp_path: Path):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        # A fresh profile (user data dir) per test; Playwright never downloads a browser here.
        context = pw.chromium.launch_persistent_context(
            str(tmp_path / "profile"),
            executable_path=CHROMIUM,
            args=FLAGS,
            headless=True,
            viewport={"width": 1400, "height": 1800},
        )
        try:
            yield context.new_page()
        finally:
            context.close()


def test_unauthenticated_requests_get_the_login_page_and_change_nothing(system: dict) -> None:
    url = system["url"]
    assert not halted(system)
    page = requests.get(f"{url}/", timeout=10)
    assert page.status_code == 200 and 'id="login"' in page.text and 'id="positions"' not in page.text
    for path in ("/confirm?action=halt", "/decision/x"):
        answer = requests.get(f"{url}{path}", timeout=10, allow_redirects=False)
        assert answer.status_code == 303 and answer.headers["Location"] == "/login"
    forged = requests.post(f"{url}/action", data={"action": "halt", "csrf": "x"}, timeout=10, allow_redirects=False)
    assert forged.status_code == 303 and forged.headers["Location"] == "/login"
    stale = requests.post(
        f"{url}/action",
        data={"action": "halt"},
        cookies={"qe_session": secrets.token_urlsafe(32)},
        timeout=10,
        allow_redirects=False,
    )
    assert stale.status_code == 303
    refused = requests.post(f"{url}/login", data={"token": "not-the-token"}, timeout=10, allow_redirects=False)
    assert refused.status_code == 401 and "Set-Cookie" not in refused.headers
    assert not halted(system), "a request without a session changed the trading state"


def test_a_session_without_the_form_csrf_token_cannot_act(system: dict) -> None:
    with requests.Session() as s:
        login = s.post(f"{system['url']}/login", data={"token": system["token"]}, timeout=10, allow_redirects=False)
        assert login.status_code == 303
        cookie = login.headers["Set-Cookie"]
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
        answer = s.post(f"{system['url']}/action", data={"action": "halt", "csrf": "guess"}, timeout=10)
        assert answer.status_code == 403
    assert not halted(system)


def test_operator_signs_in_sees_positions_and_decisions_then_halts_and_resumes(system: dict, browser, tmp_path) -> None:
    page = browser
    shots = tmp_path / "screenshots"
    shots.mkdir()
    page.goto(system["url"] + "/")
    assert page.locator("#login").is_visible()
    page.screenshot(path=str(shots / "1-login.png"))
    page.fill("#token", system["token"])
    page.click("#sign-in")
    page.wait_for_selector("#positions")
    assert page.inner_text("#subject") == "alice"
    assert page.locator("#positions tr").count() >= 2, "no position row"
    assert page.locator("#decisions tr").count() >= 2, "no decision row"
    assert page.locator("#fills tr").count() >= 2, "no fill row"
    assert page.inner_text("#trading-state") == "ACTIVE"
    page.screenshot(path=str(shots / "2-dashboard.png"), full_page=True)

    page.click("#decisions a.explain >> nth=0")
    page.wait_for_selector("#explain pre")
    assert "decision " in page.inner_text("#explain pre")
    page.go_back()

    page.click("#action-halt")
    page.wait_for_selector("#confirm-form")
    assert not halted(system), "halted before the confirmation"
    page.screenshot(path=str(shots / "3-confirm-halt.png"))
    page.fill("#reason", "browser test halt")
    page.click("#confirm")
    page.wait_for_selector("#flash")
    assert "HALTED" in page.inner_text("#flash") and page.inner_text("#trading-state") == "HALTED"
    assert halted(system)
    page.screenshot(path=str(shots / "4-halted.png"), full_page=True)

    page.click("#action-resume")
    page.wait_for_selector("#confirm-form")
    page.click("#confirm")
    page.wait_for_selector("#flash")
    assert page.inner_text("#trading-state") == "ACTIVE"
    assert not halted(system)
    page.screenshot(path=str(shots / "5-resumed.png"), full_page=True)

    log = system["up_log"].read_text()
    assert '"msg": "trading halted by operator"' in log and '"actor": "alice"' in log, "not audited as alice"
    for name in ("1-login", "2-dashboard", "3-confirm-halt", "4-halted", "5-resumed"):
        assert (shots / f"{name}.png").stat().st_size > 1000
