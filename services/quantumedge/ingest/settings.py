"""Settings of the ingest service (section `ingest` of the configuration)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

# Binance's public market-data endpoints. Market data needs no API key on either venue.
# Drift per unit of order-flow pressure in the synthetic market (bps/s): sized so the oracle's trades clear a
# 20 bp taker round trip by about twice with the default barriers (docs/strategy.md has the figures).
PLANTED_EDGE_BPS_PER_S = 0.3

BINANCE_ENDPOINTS: dict[str, tuple[str, str]] = {
    "live": ("wss://stream.binance.com:9443", "https://api.binance.com"),
    "testnet": ("wss://stream.testnet.binance.vision", "https://testnet.binance.vision"),
}


class IngestSettings(BaseModel):
    # "binance" is the normal path outside embedded mode; `quantumedge up` switches to "synthetic".
    source: Literal["binance", "replay", "synthetic", "capture"] = "binance"
    synthetic_seed: int = 7
    # Bounded run for demos and tests: stop the synthetic source after this many steps (0 = unbounded).
    synthetic_steps: int = 0
    # 0 = as fast as possible, 1 = real time (one step per second), N = N times real time.
    synthetic_speed: float = Field(default=0.0, ge=0.0)
    # The synthetic market's planted edge (drift per unit of order-flow pressure, bps/s); 0 = no edge.
    synthetic_edge_bps_per_s: float = Field(default=PLANTED_EDGE_BPS_PER_S, ge=0.0, le=10.0)
    # Lockstep (ingest/lockstep.py): after each synthetic step wait until every consumer group of the in-process
    # bus has consumed everything, so all services share one market present. `quantumedge up` turns it on for
    # its accelerated synthetic run (speed 0) only; it needs bus=memory and source=synthetic.
    lockstep: bool = False
    # The bound of one wait: past it the feed logs which groups are behind and publishes the next step anyway.
    lockstep_timeout_s: float = Field(default=10.0, gt=0.0, le=600.0)

    # --- Binance websocket + REST (QE_BINANCE_WS_URL / QE_BINANCE_REST_URL override the venue's defaults)
    venue: Literal["live", "testnet"] = "live"
    binance_ws_url: str = ""
    binance_rest_url: str = ""
    trade_stream: Literal["trade", "aggTrade"] = "trade"
    # Top-of-book levels carried by each depth event (the local book itself keeps every level it learns).
    depth_levels: int = Field(default=20, ge=1, le=5000)
    # Levels asked for in the REST snapshot (Binance allows up to 5000; 1000 weighs 50 request weight).
    snapshot_limit: int = Field(default=1000, ge=1, le=5000)
    snapshot_timeout_s: float = 10.0
    # Diffs buffered while a snapshot is in flight; beyond this the sync restarts (protects memory).
    max_buffered_diffs: int = 10_000
    # websockets keepalive: a ping every interval, the connection is dropped when the pong is this late.
    ping_interval_s: float = 20.0
    ping_timeout_s: float = 20.0
    open_timeout_s: float = 10.0
    close_timeout_s: float = 5.0
    # Binance cuts connections at 24 h; replace them on our own terms before that (make-before-break, as
    # after a serverShutdown event): the old connection is read for at least handover_min_overlap_s after
    # the new one opened, and until the new one's depth diffs reach back to the books (at most
    # handover_timeout_s); what both delivered is passed on once.
    max_connection_age_s: float = 23.5 * 3600
    handover_timeout_s: float = Field(default=10.0, gt=0)
    handover_min_overlap_s: float = Field(default=0.5, ge=0)
    # Data watchdog: a connection that delivered no valid frame for this long is replaced (0 = off). The
    # websockets keepalive only proves the socket answers pings; this proves data still flows.
    data_timeout_s: float = Field(default=120.0, ge=0)
    reconnect_initial_s: float = 0.5
    reconnect_max_s: float = 30.0

    # --- replay of recorded files
    replay_path: str = ""  # default: <data_dir>/recordings
    # 0 = as fast as possible, 1 = real time, N = N times real time.
    replay_speed: float = Field(default=0.0, ge=0.0)
    # Shift exchange times so the first replayed event is "now": downstream staleness guards keep working.
    replay_restamp: bool = True

    # --- replay of raw Binance captures (`<recv ns> <frame>` lines, gzip) through the live parser and book sync
    capture_path: str = ""  # a file or a folder of *.gz captures; several separated by commas
    # 0 = as fast as possible, 1 = real time (by receive time), N = N times real time.
    capture_speed: float = Field(default=0.0, ge=0.0)
    # Off: events keep the capture's own times (recordings, training, tests). On: the first frame is "now",
    # for feeding running services whose staleness guards compare event time with the wall clock.
    capture_restamp: bool = False

    # --- recorder
    record: bool = False
    record_dir: str = ""  # default: <data_dir>/recordings
    record_rotate_mb: float = 64.0
    record_batch_events: int = 5_000
    record_flush_s: float = 5.0
    record_queue_max: int = 200_000
    retention_max_age_h: float = 24.0 * 7
    retention_max_total_mb: float = 10_240.0

    # --- gRPC Subscribe: events queued per subscriber before the slowest one starts losing events.
    subscribe_queue_max: int = 10_000

    def ws_base_url(self) -> str:
        return (self.binance_ws_url or BINANCE_ENDPOINTS[self.venue][0]).rstrip("/")

    def rest_base_url(self) -> str:
        return (self.binance_rest_url or BINANCE_ENDPOINTS[self.venue][1]).rstrip("/")

    def source_name(self) -> str:
        return "binance" if self.venue == "live" else "binance-testnet"
