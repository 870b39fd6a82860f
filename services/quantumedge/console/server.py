"""The console's HTTP server: login with the operator token, a session cookie, pages read live from the
services' gRPC APIs, and the operator actions (each confirmed, CSRF-checked, and made with the operator's own
token, so the services audit it under the operator's name). The console keeps no state but sessions.
"""

from __future__ import annotations

import ssl
import threading
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from http import cookies
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

from quantumedge.console import pages
from quantumedge.console.dashboard import dashboard, explain_page
from quantumedge.console.sessions import COOKIE, Session, Sessions, cookie_header, csrf_ok
from quantumedge.ops.client import Services
from quantumedge.ops.commands import state_name
from quantumedge.shared.auth import OperatorTokens, operator_tokens
from quantumedge.shared.config import port_setting
from quantumedge.shared.errors import OperatorError, PortInUseError
from quantumedge.shared.logs import get_logger
from quantumedge.v1 import execution_pb2, risk_pb2

if TYPE_CHECKING:
    from quantumedge.settings import Settings  # annotations only: the caller hands the root in

log = get_logger(__name__)
MAX_FORM_BYTES = 16_384


@dataclass(frozen=True)
class Action:
    label: str
    explain: str
    call: Callable[[Services, str, dict[str, str]], str]
    takes_symbol: bool = False
    danger: bool = True


def _halt(s: Services, token: str, form: dict[str, str]) -> str:
    s.call("risk", s.risk.Halt, risk_pb2.HaltRequest(reason=form["reason"]), token)
    return "trading HALTED"


def _resume(s: Services, token: str, form: dict[str, str]) -> str:
    answer = s.call("risk", s.risk.Resume, risk_pb2.ResumeRequest(reason=form["reason"]), token)
    return "trading still HALTED" if answer.halted else "trading ACTIVE"


def _flatten(s: Services, token: str, form: dict[str, str]) -> str:
    request = execution_pb2.FlattenRequest(symbol=form.get("symbol", "").upper(), reason=form["reason"])
    return f"flatten: {s.call('execution', s.execution.Flatten, request, token).orders_sent} closing orders sent"


def _cancel_all(s: Services, token: str, form: dict[str, str]) -> str:
    request = execution_pb2.CancelAllRequest(symbol=form.get("symbol", "").upper(), reason=form["reason"])
    return f"cancel-all: {s.call('execution', s.execution.CancelAll, request, token).canceled} orders canceled"


def _reduce(s: Services, token: str, form: dict[str, str]) -> str:
    request = risk_pb2.ReduceRequest(symbol=form.get("symbol", "").upper(), reason=form["reason"])
    answer = s.call("risk", s.risk.Reduce, request, token)
    return f"{request.symbol or 'account'} {state_name(answer.state.state)}"


def _activate(s: Services, token: str, form: dict[str, str]) -> str:
    request = risk_pb2.ActivateRequest(symbol=form.get("symbol", "").upper(), reason=form["reason"])
    answer = s.call("risk", s.risk.Activate, request, token)
    return f"{request.symbol or 'account'} {state_name(answer.state.state)}"


ACTIONS: dict[str, Action] = {
    "halt": Action("Halt", "Halt trading: no new entries; exits and protective orders still go.", _halt),
    "resume": Action(
        "Resume", "Lift the halt (refused while a halting limit is still breached).", _resume, danger=False
    ),
    "flatten": Action("Flatten", "Close positions at market.", _flatten, takes_symbol=True),
    "cancel-all": Action("CancelAll", "Cancel every open order.", _cancel_all, takes_symbol=True),
    # Exits only, per symbol or (no symbol) for the whole account; Activate undoes it (a halt needs Resume).
    "reduce": Action("Reduce", "Exits only: refuse new entries, let exits and protection through.", _reduce, True),
    "activate": Action("Activate", "Back to ACTIVE after Reduce.", _activate, takes_symbol=True, danger=False),
}


class Console:
    def __init__(self, settings: Settings, tokens: OperatorTokens | None = None) -> None:
        self.settings = settings
        self.tokens = tokens if tokens is not None else operator_tokens(settings, "console")
        self.sessions = Sessions(settings.console.session_ttl_s)
        self.secure = bool(settings.console.tls_cert_file)
        self.flash: dict[str, str] = {}  # one message per session, shown once

    def services(self) -> Services:
        return Services(self.settings)

    def login(self, token: str) -> str | None:
        subject = self.tokens.verify(token) if token and self.tokens else None
        if subject is None:
            log.warning("console sign-in refused")
            return None
        log.info("console sign-in", extra={"subject": subject})
        return self.sessions.create(subject, token)

    def act(self, session: Session, sid: str, name: str, form: dict[str, str]) -> str:
        action = ACTIONS[name]
        with self.services() as services:
            try:
                outcome = action.call(services, session.token, {"reason": f"{action.label.lower()}", **form})
            except OperatorError as exc:
                outcome = f"{action.label} refused: {exc.reason}: {exc.message}"
        log.info("console action", extra={"subject": session.subject, "action": name, "outcome": outcome})
        self.flash[sid] = outcome
        return outcome


class _PageHandler(BaseHTTPRequestHandler):
    """HTTP plumbing of the console: the session cookie, HTML answers with the security headers, redirects
    and small forms. The routes are ConsoleHandler's; the console they serve is a class attribute set by
    handler_for, because http.server builds a handler per request from the class alone."""

    console: Console
    server_version = "QuantumEdgeConsole"
    sys_version = ""

    def log_message(self, fmt: str, *args: Any) -> None:
        log.debug("console request", extra={"line": fmt % args})

    # -- helpers ------------------------------------------------------------------------------------
    def _sid(self) -> str | None:
        jar = cookies.SimpleCookie(self.headers.get("Cookie", ""))
        morsel = jar.get(COOKIE)
        return morsel.value if morsel else None

    def _session(self) -> tuple[str | None, Session | None]:
        sid = self._sid()
        return sid, self.console.sessions.get(sid)

    def _send(self, status: int, body: str, extra: dict[str, str] | None = None) -> None:
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Frame-Options", "DENY")
        self.send_header("Content-Security-Policy", "default-src 'self'; style-src 'unsafe-inline'")
        for key, value in (extra or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def _redirect(self, where: str, extra: dict[str, str] | None = None) -> None:
        self.send_response(303)
        self.send_header("Location", where)
        self.send_header("Content-Length", "0")
        for key, value in (extra or {}).items():
            self.send_header(key, value)
        self.end_headers()

    def _form(self) -> dict[str, str]:
        length = min(int(self.headers.get("Content-Length", "0") or 0), MAX_FORM_BYTES)
        raw = self.rfile.read(length).decode(errors="replace")
        return {k: v[0] for k, v in urllib.parse.parse_qs(raw).items()}


class ConsoleHandler(_PageHandler):
    """The console's pages (GET) and its sign-in and operator actions (POST)."""

    def do_GET(self) -> None:
        url = urllib.parse.urlsplit(self.path)
        if url.path == "/login":
            return self._send(200, pages.login())
        if url.path == "/logout":
            self.console.sessions.drop(self._sid())
            return self._redirect("/login", {"Set-Cookie": cookie_header("", self.console.secure, 0)})
        sid, session = self._session()
        if session is None:
            return self._send(200, pages.login("sign in first")) if url.path == "/" else self._redirect("/login")
        query = dict(urllib.parse.parse_qsl(url.query))
        if url.path == "/":
            flash = self.console.flash.pop(sid or "", "")
            with self.console.services() as services:
                return self._send(200, dashboard(self.console, services, session, flash, ACTIONS))
        if url.path == "/confirm" and query.get("action") in ACTIONS:
            name = query["action"]
            return self._send(200, pages.confirm(name, ACTIONS[name], session.csrf, session.subject))
        if url.path.startswith("/decision/"):
            with self.console.services() as services:
                return self._send(200, explain_page(services, session, url.path.rsplit("/", 1)[1]))
        return self._send(404, pages.page("not found", "<p>no such page</p>", session.subject))

    def do_POST(self) -> None:
        url = urllib.parse.urlsplit(self.path)
        form = self._form()
        if url.path == "/login":
            sid = self.console.login(form.get("token", ""))
            if sid is None:
                return self._send(401, pages.login("that token is not an operator token"))
            ttl = int(self.console.settings.console.session_ttl_s)
            return self._redirect("/", {"Set-Cookie": cookie_header(sid, self.console.secure, ttl)})
        sid, session = self._session()
        if session is None or sid is None:
            return self._redirect("/login")  # changes nothing without a session
        if url.path != "/action" or form.get("action") not in ACTIONS:
            return self._send(404, pages.page("not found", "<p>no such action</p>", session.subject))
        if not csrf_ok(session, form.get("csrf", "")):
            log.warning("console action refused: bad CSRF token", extra={"subject": session.subject})
            return self._send(403, pages.page("refused", "<p>stale or forged form; reload</p>", session.subject))
        fields = {k: v for k, v in form.items() if k in ("reason", "symbol") and v}
        self.console.act(session, sid, form["action"], fields)
        return self._redirect("/")


def handler_for(console: Console) -> type[BaseHTTPRequestHandler]:
    """A handler class bound to this console (each server gets its own, so two consoles never share one)."""
    return type("Handler", (ConsoleHandler,), {"console": console})


def serve(console: Console, port: int) -> ThreadingHTTPServer:
    settings = console.settings
    try:
        httpd = ThreadingHTTPServer((settings.console.host, port), handler_for(console))
    except OSError as exc:
        if exc.errno == 98:
            raise PortInUseError(
                f"{settings.console.host}:{port} (console) is already in use; set {port_setting('console')}",
                setting=port_setting("console"),
            ) from None
        raise
    httpd.daemon_threads = True
    if settings.console.tls_cert_file:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(settings.console.tls_cert_file, settings.console.tls_key_file or None)
        httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    return httpd


def run_console(settings: Settings) -> int:
    """`quantumedge console` until SIGTERM / Ctrl-C."""
    from quantumedge.shared.process_signals import install_signal_handlers

    console = Console(settings)
    if not console.tokens:
        log.warning("no operator token hash configured: nobody can sign in", extra={"why": console.tokens.problem})
    httpd = serve(console, settings.ports.console)
    stop = threading.Event()
    install_signal_handlers(stop)
    thread = threading.Thread(target=httpd.serve_forever, name="console-http", daemon=True)
    thread.start()
    scheme = "https" if console.secure else "http"
    log.info("console listening", extra={"url": f"{scheme}://{settings.console.host}:{httpd.server_port}/"})
    stop.wait()
    httpd.shutdown()
    httpd.server_close()
    return 0
