"""The four kinds of market event, by the names recordings and streams use (no pyarrow: the live path needs
the names, not the file format)."""

from __future__ import annotations

KIND_TRADE = "trade"
KIND_TOP_OF_BOOK = "top_of_book"
KIND_DEPTH = "depth"
KIND_GAP = "gap"
