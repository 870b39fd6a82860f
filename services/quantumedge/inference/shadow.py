"""Shadow models: scored beside the promoted ones on the same rows, published apart, never traded.

A symbol's shadow predictor is its served models with each horizon's shadow version (registry.py) in place
of the promoted one, so a shadow signal is exactly the signal the symbol would get if the shadows were
promoted. It goes to inference.shadow_signals.v1, which no service consumes (topics.READERS): risk never
sees it. Its id is prefixed so it can never be mistaken for (or deduplicated against) a live signal.
"""

from __future__ import annotations

from quantumedge.inference.domain.features import FeatureSchema
from quantumedge.inference.models import ModelSet, ServedModel, SymbolPredictor
from quantumedge.inference.registry import Registry, RegistryError

SHADOW_ID_PREFIX = "shadow:"


def attach_shadows(
    models: ModelSet, registry: Registry, symbols: list[str], horizons: list[int], schema: FeatureSchema, combine: bool
) -> ModelSet:
    """Load the verified shadow versions into `models.shadow`; a shadow that cannot load is reported, not served."""
    try:
        doc = registry.load()
    except RegistryError as exc:
        models.shadow_problems.append(f"manifest unreadable, no shadow models: {exc}")
        return models
    for symbol in symbols:
        shadows: dict[int, ServedModel] = {}
        for h in horizons:
            entry = registry.shadow(symbol, h, doc)
            if entry is None:
                continue
            try:
                shadows[h] = ServedModel(entry, registry.read_verified(entry, schema.hash, schema.size))
            except RegistryError as exc:
                models.shadow_problems.append(f"{symbol}/h{h} shadow {entry.version}: {exc}")
        if not shadows:
            continue
        if symbol not in models.predictors:
            models.shadow_problems.append(f"{symbol}: shadow not scored, the symbol has no served models")
            continue
        mixed = [
            shadows.get(h) or models.served[(symbol, h)]
            for h in horizons
            if h in shadows or (symbol, h) in models.served
        ]
        models.shadow[symbol] = SymbolPredictor(symbol, mixed, schema.size, combine)
        for h, m in shadows.items():
            models.shadow_versions[(symbol, h)] = m.entry.version
    return models
