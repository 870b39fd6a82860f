"""Parameter sweeps: many configurations over several recordings, run in parallel, merged into one report.

A sweep file (YAML or JSON) names the configurations as a grid, a list, or both:

    grid:                                   # every combination: 2 x 2 = 4 configurations
      risk.limits.take_profit_bps: [8, 12]
      risk.limits.stop_loss_bps: [6, 10]
    configs:                                # and these, by name
      - name: wide-fees
        set: {execution.paper_taker_fee_bps: 5}

Each key is a dotted settings path (the QE_ variable's name with `__` as `.`), validated exactly as the
services validate the same setting, so a typo or an out-of-range value stops the sweep before anything runs.
Every configuration runs over every source (recording root or synthetic seed); each run is one process of
the pool, the same `Backtest` as a single run, so a sweep's row equals the run `quantumedge backtest` gives
for that configuration alone. `--sweep-index K` runs configuration K only and writes its rows as a part file
(one pod of an indexed Kubernetes Job); `--merge` folds part files into the same report.
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import yaml
from pydantic import ValidationError

from quantumedge.risk.domain.limit_config import InvalidLimitsError, default_limits, validate_limits
from quantumedge.settings import Settings

PART_GLOB = "part-*.json"


def part_name(index: int) -> str:
    """Configuration `index`'s part file (what PART_GLOB finds and wait_for_parts counts)."""
    return f"part-{index:05d}.json"


class SweepError(ValueError):
    """The sweep file or a configuration in it is unusable; the message names which and why."""


@dataclass(frozen=True)
class RunConfig:
    name: str
    overrides: dict[str, Any]


@dataclass(frozen=True)
class Source:
    """One market to run every configuration over: a recording root, or the synthetic market's seed."""

    label: str
    data: str | None = None
    seed: int | None = None
    steps: int | None = None


@dataclass(frozen=True)
class Job:
    config: RunConfig
    source: Source
    config_file: str | None
    symbols: tuple[str, ...] | None
    models_dir: str | None
    allow_missing_models: bool


# -- the sweep file -------------------------------------------------------------------------------------
def load_sweep(path: Path) -> list[RunConfig]:
    """The configurations a sweep file names, in a stable order (grid first, then the list)."""
    try:
        spec = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise SweepError(f"cannot read sweep file {path}: {exc}") from None
    if not isinstance(spec, dict) or not ({"grid", "configs"} & spec.keys()):
        raise SweepError(f"sweep file {path} needs a 'grid' mapping and/or a 'configs' list")
    unknown = set(spec) - {"grid", "configs"}
    if unknown:
        raise SweepError(f"sweep file {path}: unknown section(s) {', '.join(sorted(unknown))}")
    configs = _grid(spec.get("grid") or {}) + _listed(spec.get("configs") or [])
    if not configs:
        raise SweepError(f"sweep file {path} names no configuration")
    names = [c.name for c in configs]
    duplicate = sorted({n for n in names if names.count(n) > 1})
    if duplicate:
        raise SweepError(f"sweep file {path}: configuration names repeat: {', '.join(duplicate)}")
    return configs


def _grid(grid: Any) -> list[RunConfig]:
    if not isinstance(grid, dict) or not all(isinstance(v, list) and v for v in grid.values()):
        raise SweepError("'grid' must map each dotted setting to a non-empty list of values")
    if not grid:  # product() of nothing is one empty combination: a configs-only file has no grid run
        return []
    keys = list(grid)
    configs = []
    for values in itertools.product(*(grid[k] for k in keys)):
        overrides = dict(zip(keys, values, strict=True))
        configs.append(RunConfig(",".join(f"{k.rsplit('.', 1)[-1]}={v}" for k, v in overrides.items()), overrides))
    return configs


def _listed(listed: Any) -> list[RunConfig]:
    if not isinstance(listed, list):
        raise SweepError("'configs' must be a list of {name, set}")
    configs = []
    for i, item in enumerate(listed):
        if not isinstance(item, dict) or not isinstance(item.get("set", {}), dict):
            raise SweepError(f"configs[{i}] must be a mapping with 'name' and a 'set' mapping")
        configs.append(RunConfig(str(item.get("name") or f"config-{i}"), dict(item.get("set") or {})))
    return configs


def apply_overrides(settings: Settings, overrides: dict[str, Any]) -> Settings:
    """`settings` with each dotted path set, validated as the services validate it (SweepError otherwise)."""
    data = settings.model_dump()
    for dotted, value in overrides.items():
        node = data
        *parents, leaf = dotted.split(".")
        for part in parents:
            if not isinstance(node.get(part), dict):
                raise SweepError(f"unknown setting {dotted!r} (no section {part!r})")
            node = node[part]
        if leaf not in node:
            raise SweepError(f"unknown setting {dotted!r}")
        node[leaf] = value
    try:
        swept = type(settings).model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise SweepError(f"invalid value in sweep: {where}: {first['msg']}") from None
    try:
        validate_limits(default_limits(swept.risk))  # what risk checks at start, before any run
    except InvalidLimitsError as exc:
        raise SweepError(f"invalid limits in sweep: {exc}") from None
    return swept


# -- running ----------------------------------------------------------------------------------------------
def jobs_for(configs: Sequence[RunConfig], sources: Sequence[Source], **common: Any) -> list[Job]:
    return [Job(config, source, **common) for config in configs for source in sources]


# -- the merged report ----------------------------------------------------------------------------------
def by_config(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """One line per configuration over all its sources, best total PnL first."""
    totals: dict[str, dict[str, Any]] = {}
    for row in rows:
        t = totals.setdefault(
            row["config"],
            {"config": row["config"], "sources": 0, "pnl": 0.0, "fees": 0.0, "fills": 0, "round_trips": 0, "wins": 0},
        )
        t["sources"] += 1
        for key in ("pnl", "fees", "fills", "round_trips", "wins"):
            t[key] += row[key]
        t["worst_drawdown_fraction"] = max(t.get("worst_drawdown_fraction", 0.0), row["max_drawdown_fraction"])
        t["halted_sources"] = t.get("halted_sources", 0) + int(bool(row["halts"]))
    for t in totals.values():
        t["win_rate"] = t["wins"] / t["round_trips"] if t["round_trips"] else None
    return sorted(totals.values(), key=lambda t: -t["pnl"])


def write_report(out: Path, rows: list[dict[str, Any]], info: dict[str, Any]) -> list[Path]:
    """sweep.parquet (one row per configuration x source), sweep.json (the rows, the per-config lines and
    the run's description)."""
    out.mkdir(parents=True, exist_ok=True)
    table = out / "sweep.parquet"
    pq.write_table(pa.Table.from_pylist(rows), table)
    summary = out / "sweep.json"
    summary.write_text(json.dumps({"run": info, "by_config": by_config(rows), "rows": rows}, indent=2, default=str))
    return [table, summary]


def write_part(out: Path, index: int, rows: list[dict[str, Any]]) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    path = out / part_name(index)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(rows, default=str))
    tmp.replace(path)  # a merge never reads half a part
    return path


def read_parts(roots: Sequence[Path]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    paths = sorted(p for root in roots for p in Path(root).glob(PART_GLOB))
    if not paths:
        raise SweepError(f"no {PART_GLOB} under {', '.join(str(r) for r in roots)}")
    for path in paths:
        try:
            rows.extend(json.loads(path.read_text()))
        except (OSError, json.JSONDecodeError) as exc:
            raise SweepError(f"unreadable part file {path}: {exc}") from None
    return rows


def wait_for_parts(
    roots: Sequence[Path],
    expected: int,
    timeout_s: float,
    *,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> None:
    """Wait until exactly part-00000 .. part-(expected-1) exist under roots (a merge Job starts with the
    sweep's pods and waits for them); a part outside that range (a stale, larger sweep) is an error."""
    wanted = {part_name(i) for i in range(expected)}
    deadline = clock() + timeout_s
    while True:
        found = {p.name for root in roots for p in Path(root).glob(PART_GLOB)}
        if found - wanted:
            extra = ", ".join(sorted(found - wanted))
            raise SweepError(f"part file(s) {extra} are not of a {expected}-configuration sweep (a stale run?)")
        if found == wanted:
            return
        if clock() >= deadline:
            raise SweepError(
                f"{len(found)} of {expected} part files after {timeout_s:g} s; missing: {_few(wanted - found)}"
            )
        sleep(min(5.0, max(0.0, deadline - clock())))


def _few(names: set[str]) -> str:
    listed = sorted(names)
    return ", ".join(listed[:5]) + (f" and {len(listed) - 5} more" if len(listed) > 5 else "")
