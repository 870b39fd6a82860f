"""A tiny Kubernetes API peer for Vault's kubernetes auth: the real TokenReview endpoint over HTTPS.

Vault/OpenBao receives a service-account JWT at login and POSTs it to
`{kubernetes_host}/apis/authentication.k8s.io/v1/tokenreviews`; this server answers in the documented
TokenReview format, authenticating only the JWTs it issued (signed RS256 like kubelet-projected tokens).
"""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import json
import ssl
import tempfile
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID

TOKENREVIEW_PATH = "/apis/authentication.k8s.io/v1/tokenreviews"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class TokenReviewServer:
    def __init__(self) -> None:
        self._signing_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self._issued: dict[str, dict[str, object]] = {}
        self.reviews: list[str] = []  # service-account usernames Vault asked about
        self._dir = Path(tempfile.mkdtemp(prefix="qe-k8s-peer-"))
        self.ca_pem = self._make_tls()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self._dir / "tls.crt", self._dir / "tls.key")
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self.host = f"https://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, name="k8s-peer", daemon=True)

    def _make_tls(self) -> str:
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kube-apiserver")])
        now = dt.datetime.now(dt.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(hours=2))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
            .sign(key, hashes.SHA256())
        )
        pem = cert.public_bytes(serialization.Encoding.PEM)
        (self._dir / "tls.crt").write_bytes(pem)
        pkcs8 = serialization.PrivateFormat.PKCS8
        (self._dir / "tls.key").write_bytes(
            key.private_bytes(serialization.Encoding.PEM, pkcs8, serialization.NoEncryption())
        )
        return pem.decode()

    def issue(self, namespace: str, service_account: str) -> str:
        """A service-account JWT as kubelet would project it (legacy claim names)."""
        uid = str(uuid.uuid4())
        claims = {
            "iss": "kubernetes/serviceaccount",
            "sub": f"system:serviceaccount:{namespace}:{service_account}",
            "kubernetes.io/serviceaccount/namespace": namespace,
            "kubernetes.io/serviceaccount/service-account.name": service_account,
            "kubernetes.io/serviceaccount/service-account.uid": uid,
            "kubernetes.io/serviceaccount/secret.name": f"{service_account}-token",
        }
        header = {"alg": "RS256", "typ": "JWT", "kid": "qe-test"}
        signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
        signature = self._signing_key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        token = f"{signing_input}.{_b64(signature)}"
        self._issued[token] = {
            "username": claims["sub"],
            "uid": uid,
            "groups": ["system:serviceaccounts", f"system:serviceaccounts:{namespace}"],
        }
        return token

    def revoke(self, token: str) -> None:
        self._issued.pop(token, None)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        peer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                if self.path != TOKENREVIEW_PATH or not self.headers.get("Authorization", "").startswith("Bearer "):
                    self.send_error(404 if self.path != TOKENREVIEW_PATH else 401)
                    return
                review = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
                user = peer._issued.get(review.get("spec", {}).get("token", ""))
                if user:
                    peer.reviews.append(str(user["username"]))
                    status = {"authenticated": True, "user": user, "audiences": review["spec"].get("audiences") or []}
                else:
                    status = {"authenticated": False, "error": "token is not valid"}
                body = json.dumps(
                    {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "status": status}
                ).encode()
                self.send_response(201)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_args: object) -> None:
                pass

        return Handler

    def __enter__(self) -> TokenReviewServer:
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
        for file in self._dir.iterdir():
            file.unlink()
        self._dir.rmdir()
