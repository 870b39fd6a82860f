"""Settings of the execution service (section `execution` of the configuration).

Environment: QE_VENUE (flat alias of venue) and QE_EXECUTION__<FIELD>, e.g. QE_EXECUTION__ALLOW_LIVE=true.
Live trading needs both venue=live and allow_live=true, and its keys come from Vault only.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class ExecutionSettings(BaseModel):
    # paper | testnet | live. Live is never the default and needs credentials from Vault.
    venue: Literal["paper", "testnet", "live"] = "paper"
    # Second switch for real money: venue=live alone refuses to start.
    allow_live: bool = False
    # trade: approved decisions become orders at the venue. observe: nothing is sent to any venue (no client
    # is built, no exchange key read); each approved decision gets a report with observed=true and a
    # hypothetical fill at the touch (execution/observe.py), which risk never counts as PnL.
    mode: Literal["trade", "observe"] = "trade"

    # Binance endpoints; empty = the venue's documented default (testnet.binance.vision / api.binance.com).
    rest_url: str = ""
    ws_api_url: str = ""
    # Signed requests: how long a request stays valid after its timestamp (Binance max 60000).
    recv_window_ms: int = Field(default=5000, ge=100, le=60_000)
    connect_timeout_s: float = Field(default=3.0, gt=0)
    read_timeout_s: float = Field(default=10.0, gt=0)
    # Attempts per order when the venue rate-limits, cannot be reached, or provably never got it.
    max_attempts: int = Field(default=4, ge=1, le=20)
    # Longer Retry-After / ban than this fails the request instead of blocking the service.
    max_rate_limit_wait_s: float = Field(default=30.0, ge=0)
    # Order updates over the WebSocket API user data stream (REST queries still resolve everything without it).
    user_stream: bool = True
    # A user data stream connection is replaced (make-before-break) this long after it opened, before
    # Binance's 24-hour cut; and one that does not answer a `ping` request within the timeout (asked
    # every interval) is replaced and reconciled.
    stream_max_connection_age_s: float = Field(default=23.5 * 3600, gt=0, le=24 * 3600)
    stream_watchdog_interval_s: float = Field(default=30.0, gt=0)
    stream_watchdog_timeout_s: float = Field(default=10.0, gt=0)
    # An order whose outcome is unknown (timeout, 5xx, -1006/-1007) is never sent again; it is resolved by the
    # user data stream, queries and trades. Past this bound (longer than the matching engine's 10 s timeout)
    # its symbol takes exits only and an OUTCOME_UNKNOWN alert is raised (docs/runbook.md).
    unknown_outcome_bound_s: float = Field(default=60.0, gt=10.0, le=3600.0)
    # exchangeInfo (20 request weight) is asked again for a symbol after this; "unknown symbol" answers
    # are kept for the second one.
    exchange_info_ttl_s: float = Field(default=3600.0, gt=0)
    unknown_symbol_ttl_s: float = Field(default=300.0, gt=0)

    # Hard caps execution keeps whatever risk approved (quote currency): one entry's notional, and one symbol's
    # position (held + working entries + the new one). An entry over either is refused with reject_code
    # CAP_ORDER_NOTIONAL / CAP_POSITION_NOTIONAL in its report, so risk learns of it. Changed by restart only:
    # a forged or mistaken limits record cannot raise them. Keep them above risk's limits.
    max_order_notional: float = Field(default=5_000.0, gt=0)
    max_position_notional: float = Field(default=10_000.0, gt=0)

    # Equity before any trade, for reports and risk (cash + marked positions is derived from it).
    starting_equity: float = Field(default=10_000.0, gt=0)
    # Risk's gRPC address for SubmitOrder reviews; empty = 127.0.0.1:<ports.risk>. In a cluster: risk:50053.
    risk_address: str = ""
    risk_timeout_s: float = Field(default=5.0, gt=0)
    # How often unresolved orders are re-queried and time stops checked on the venue's clock.
    housekeeping_interval_s: float = Field(default=1.0, gt=0)
    # A position report per symbol this often (and once at start): risk fails closed without execution state.
    heartbeat_interval_s: float = Field(default=5.0, ge=0)
    # Position reports caused only by a new mark, at most once per this many ms per symbol.
    mark_report_interval_ms: int = Field(default=1000, ge=0)

    # Paper venue (fill simulator) model; the backtest uses the same one.
    paper_maker_fee_bps: float = Field(default=10.0, ge=0)
    paper_taker_fee_bps: float = Field(default=10.0, ge=0)
    # Order-entry latency, on the market's clock: an order decided at t meets the book of t + this.
    paper_latency_ms: float = Field(default=0.0, ge=0)
    # Backtest only: market data reaches the strategy (features, models, risk) this long after it happened;
    # live, the feed's latency is real and this is not added.
    paper_feed_latency_ms: float = Field(default=0.0, ge=0)
    paper_slippage_bps: float = Field(default=0.0, ge=0)
    # A resting limit fills from trades at its own price only after the volume ahead of it there has traded.
    paper_queue_position: bool = True
    # Commission asset: "received" = Binance's rule (a buy pays in the base asset it receives, so the holding
    # is the fill less its commission; a sell pays in the quote asset), "quote" = always in the quote asset,
    # "bnb" = in BNB at paper_bnb_discount off (Binance's pay-fees-with-BNB option), valued at paper_bnb_price.
    paper_fee_asset: Literal["received", "quote", "bnb"] = "received"
    paper_bnb_discount: float = Field(default=0.25, ge=0, lt=1)
    paper_bnb_price: float = Field(default=600.0, gt=0)
    paper_tick_size: str = "0.01"
    paper_step_size: str = "0.00001"
    paper_min_notional: str = "5"

    # One active executor per account (see docs/runbook.md "Executor lease"): "none" (one process; the
    # embedded default), "vault" (a KV v2 check-and-set lease at `lease_path` under vault.mount), or
    # "kubernetes" (a coordination.k8s.io/v1 Lease `lease_name` in `lease_namespace`, in-cluster service
    # account credentials unless `lease_kubeconfig` is set). A replica that does not hold the lease stays
    # passive: NOT_SERVING, consuming and sending nothing.
    lease: Literal["none", "vault", "kubernetes"] = "none"
    lease_path: str = "quantumedge/leases/execution"
    lease_namespace: str = Field(default="default", pattern=r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
    lease_name: str = Field(default="quantumedge-execution", pattern=r"^[a-z0-9]([-.a-z0-9]{0,251}[a-z0-9])?$")
    lease_kubeconfig: str = ""
    lease_duration_s: float = Field(default=15.0, gt=1.0, le=300.0)
    lease_renew_s: float = Field(default=3.0, gt=0.1, le=60.0)
    lease_margin_s: float = Field(default=3.0, gt=0.1, le=60.0)
