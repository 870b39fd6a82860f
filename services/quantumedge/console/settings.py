"""Console settings (QE_CONSOLE__*); its port is ports.console (QE_PORTS__CONSOLE, default 8080)."""

from __future__ import annotations

from pydantic import BaseModel, Field


class ConsoleSettings(BaseModel):
    # Where the console listens; the services it reads are at grpc_host / ports.* (or QE_OPS_HOST).
    host: str = "127.0.0.1"
    session_ttl_s: float = Field(default=8 * 3600, gt=0)
    # Serve over TLS (the session cookie is then Secure): a certificate chain and its key, both or neither.
    tls_cert_file: str = ""
    tls_key_file: str = ""
    decisions_shown: int = Field(default=30, ge=1, le=500)
    # host:port of each service where they are not on one host (a cluster), e.g. {"risk": "qe-risk:50053"};
    # the CLI honours it too. Unset services are at grpc_host (or QE_OPS_HOST) and ports.<service>.
    addresses: dict[str, str] = Field(default_factory=dict)
