"""Settings of record signing (section `signing`) and of the gRPC servers' limits and identities (`grpc`).

Environment: QE_SIGNING__<FIELD> and QE_GRPC__<FIELD>, e.g. QE_SIGNING__MAX_DECISION_AGE_S=10.
"""

from __future__ import annotations

from pydantic import BaseModel, Field, SecretStr, model_validator

REVIEW_ORDER = "/quantumedge.v1.RiskService/ReviewOrder"


class SigningSettings(BaseModel):
    """Where risk's Ed25519 keys come from, and how old a decision execution still trades.

    In a deployment the keyring lives in Vault (quantumedge/signing/private: risk only; quantumedge/signing/
    public: risk and execution). The in-process bus (`quantumedge up`, unit tests) uses a key pair generated
    at start and held in memory. The fields below are for local runs and tests without Vault only.
    """

    # Public keys "key_id:base64,key_id2:base64" (public material, fine in the environment) and retired ids.
    public_keys: str = ""
    retired_keys: str = ""
    # Risk's private key "key_id:base64-seed", from the environment only, and only with allow_env_key=true:
    # outside a local run the key belongs in Vault.
    private_key: SecretStr = SecretStr("")
    allow_env_key: bool = False
    # Execution refuses (stale) an approved decision older than this, or further than max_clock_ahead_s ahead.
    max_decision_age_s: float = Field(default=30.0, gt=0, le=3600)
    max_clock_ahead_s: float = Field(default=5.0, ge=0, le=300)
    # A record naming a key id not known yet re-reads the public keyring at most this often.
    refresh_min_interval_s: float = Field(default=5.0, ge=0)


class GrpcSettings(BaseModel):
    """Per-server limits (so the health check always answers) and the mTLS service identities."""

    # Threads serving calls. Health Check is never limited; everything else shares max_concurrent_rpcs, which
    # stays below the thread count so a thread is always free for Check.
    max_workers: int = Field(default=16, ge=4, le=256)
    max_concurrent_rpcs: int = Field(default=12, ge=2)
    # Concurrent streaming calls of the QuantumEdge APIs (Subscribe), within max_concurrent_rpcs.
    max_streams: int = Field(default=8, ge=1)
    # With mutual TLS on: certificate names (CN or DNS SAN) that may call a method without an operator token.
    service_identities: dict[str, list[str]] = Field(default_factory=lambda: {REVIEW_ORDER: ["execution"]})
    # Name risk's server certificate must carry when execution calls it over TLS; empty = the address's host.
    tls_server_name: str = ""
    # Failed authentications per peer: a burst, then this many per minute; beyond that the peer is answered
    # RESOURCE_EXHAUSTED without a token check and without an audit record per call.
    auth_failure_burst: int = Field(default=10, ge=1)
    auth_failures_per_minute: float = Field(default=30.0, gt=0)

    @model_validator(mode="after")
    def _fits(self) -> GrpcSettings:
        if self.max_concurrent_rpcs > self.max_workers - 2:
            raise ValueError("max_concurrent_rpcs must leave at least 2 of max_workers free for health checks")
        if self.max_streams >= self.max_concurrent_rpcs:
            raise ValueError("max_streams must be below max_concurrent_rpcs, so unary calls still get through")
        return self
