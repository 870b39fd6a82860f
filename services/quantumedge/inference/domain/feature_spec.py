"""What the features are: their configuration, ordered names, schema hash and the regime they imply.

Split from features.py so the definition of a row (names, order, hash that the registry checks) reads
apart from the builders that compute it. Pure: no I/O.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field

from quantumedge.v1 import common_pb2

FEATURE_VERSION = 2
BPS = 1e4

KIND_RANK = {"gap": 0, "trade": 1, "depth": 2, "top_of_book": 3}


@dataclass(frozen=True)
class FeatureConfig:
    row_interval_ms: int = 1000
    return_windows: tuple[int, ...] = (10, 30, 60, 120)
    vol_windows: tuple[int, int] = (30, 120)  # (short, long); the short one feeds vol_ratio
    trend_window: int = 120
    ema_fast: int = 30  # spans, in rows
    ema_slow: int = 120
    vol_baseline_span: int = 3600  # long-run volatility the regime compares against
    flow_ema: int = 30
    flow_ema_slow: int = 300  # minute-scale order flow (and depth imbalance) pressure
    notional_ema: int = 60
    depth_levels: tuple[int, int] = (5, 10)
    high_vol_ratio: float = 1.0  # short vol above this multiple of the baseline = high volatility
    trend_z: float = 1.0  # |trend z-score| above this = trending
    warmup_rows: int = 120

    def __post_init__(self) -> None:
        if self.row_interval_ms <= 0:
            raise ValueError(f"row_interval_ms={self.row_interval_ms} must be > 0: rows are sampled on a clock")
        need = max(*self.return_windows, *self.vol_windows, self.trend_window)
        if self.warmup_rows < need:
            raise ValueError(f"warmup_rows={self.warmup_rows} is shorter than the longest window ({need})")
        if self.trend_window not in self.vol_windows:
            raise ValueError(f"trend_window={self.trend_window} must be one of vol_windows {self.vol_windows}")

    @property
    def interval_ns(self) -> int:
        return self.row_interval_ms * 1_000_000


DEFAULT_CONFIG = FeatureConfig()


def feature_names(config: FeatureConfig = DEFAULT_CONFIG) -> list[str]:
    short, long_ = config.vol_windows
    k1, k2 = config.depth_levels
    return [
        *(f"ret_{w}_bps" for w in config.return_windows),
        f"vol_{short}_bps",
        f"vol_{long_}_bps",
        "vol_ratio",
        "ema_fast_slope_bps",
        "ema_gap_bps",
        "trend_z",
        "spread_bps",
        "tob_imbalance",
        f"depth_imbalance_{k1}",
        f"depth_imbalance_{k2}",
        "depth_imbalance_ema",
        "depth_notional_log",
        "trade_count",
        "trade_flow",
        "trade_flow_ema",
        "trade_flow_ema_slow",
        "trade_notional_log_ema",
        "high_vol",
        "trend_dir",
    ]


@dataclass(frozen=True)
class FeatureSchema:
    version: int
    names: tuple[str, ...]
    config: FeatureConfig
    hash: str = field(init=False)

    def __post_init__(self) -> None:
        doc = json.dumps(
            {"version": self.version, "names": list(self.names), "config": asdict(self.config)}, sort_keys=True
        )
        object.__setattr__(self, "hash", hashlib.sha256(doc.encode()).hexdigest())

    @property
    def size(self) -> int:
        return len(self.names)

    def to_dict(self) -> dict:
        return {"version": self.version, "hash": self.hash, "names": list(self.names), "config": asdict(self.config)}


def make_schema(config: FeatureConfig = DEFAULT_CONFIG) -> FeatureSchema:
    return FeatureSchema(FEATURE_VERSION, tuple(feature_names(config)), config)


FEATURE_SCHEMA = make_schema()
IDX_HIGH_VOL = FEATURE_SCHEMA.names.index("high_vol")
IDX_TREND_DIR = FEATURE_SCHEMA.names.index("trend_dir")
IDX_SPREAD = FEATURE_SCHEMA.names.index("spread_bps")
IDX_VOL_SHORT = FEATURE_SCHEMA.names.index(f"vol_{DEFAULT_CONFIG.vol_windows[0]}_bps")


def regime_of(high_vol: float, trend_dir: float) -> int:
    """Volatility bucket x trend bucket -> quantumedge.v1.Regime."""
    trend = 0 if trend_dir > 0 else 1 if trend_dir < 0 else 2  # up, down, range
    return _REGIMES[1 if high_vol > 0.5 else 0][trend]


_REGIMES = (
    (common_pb2.REGIME_LOW_VOL_TREND_UP, common_pb2.REGIME_LOW_VOL_TREND_DOWN, common_pb2.REGIME_LOW_VOL_RANGE),
    (common_pb2.REGIME_HIGH_VOL_TREND_UP, common_pb2.REGIME_HIGH_VOL_TREND_DOWN, common_pb2.REGIME_HIGH_VOL_RANGE),
)
