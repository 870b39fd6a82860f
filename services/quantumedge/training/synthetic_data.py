"""Write a recording of the synthetic market in the recorder's layout, so training reads it like real data."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pyarrow.parquet as pq

from quantumedge.ingest.synthetic import SyntheticMarket
from quantumedge.shared import market_files
from quantumedge.v1 import market_pb2

CHUNK_EVENTS = 50_000  # bounded memory: events are flattened and written in chunks


def _partition(root: Path, ev: market_pb2.MarketEvent) -> Path:
    ts = datetime.fromtimestamp(ev.exchange_time_ns / 1e9, tz=UTC)
    return root / f"symbol={ev.symbol}" / f"date={ts:%Y-%m-%d}" / f"hour={ts:%H}"


def write_synthetic_recording(
    root: Path,
    symbols: list[str],
    n_steps: int,
    seed: int = 7,
    progress: Callable[[int], None] | None = None,
    **market_kwargs: object,
) -> list[Path]:
    """Generate `n_steps` steps for `symbols` into root/symbol=SYM/date=D/hour=H/part-NNNNN.parquet."""
    market = SyntheticMarket(symbols, seed=seed, **market_kwargs)  # type: ignore[arg-type]
    written: list[Path] = []
    pending: dict[Path, list[market_pb2.MarketEvent]] = defaultdict(list)
    part = 0

    def flush() -> None:
        nonlocal part
        for folder, events in sorted(pending.items()):
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / f"part-{part:05d}.parquet"
            pq.write_table(market_files.events_to_table(events), path, compression="zstd")
            written.append(path)
        part += 1
        pending.clear()

    steps_seen = 0
    for count, ev in enumerate(market.events(n_steps), start=1):
        pending[_partition(root, ev)].append(ev)
        if ev.WhichOneof("payload") == "top_of_book" and ev.symbol == market.symbols[0]:
            steps_seen += 1
            if progress and steps_seen % 1000 == 0:
                progress(1000)
        if count % CHUNK_EVENTS == 0:
            flush()
    if pending:
        flush()
    return written
