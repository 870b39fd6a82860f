"""Binance spot market data: websocket client, local order book, REST snapshot."""

from quantumedge.ingest.binance.client import BinanceSource

__all__ = ["BinanceSource"]
