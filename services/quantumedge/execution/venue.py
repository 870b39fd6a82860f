"""One Venue interface, three venues: paper (the fill simulator), Binance spot testnet and Binance spot live.

Testnet and live are the same BinanceVenue with different URLs and a different secret; live is only
built when configured explicitly (see venue_setup.build_venue). Every method returns the order updates it
learned, so the engine has one path for what the venue says, whether from a response, a query or the
user data stream.
"""

from quantumedge.execution.venue_base import ResyncSink, UpdateSink, Venue
from quantumedge.execution.venue_binance import BINANCE_URLS, INVALID_SYMBOL, BinanceVenue
from quantumedge.execution.venue_paper import PaperVenue, paper_venue

# The base, paper and Binance venues live in venue_base.py, venue_paper.py and venue_binance.py; every name
# stays importable from here.
__all__ = [
    "BINANCE_URLS",
    "INVALID_SYMBOL",
    "BinanceVenue",
    "PaperVenue",
    "ResyncSink",
    "UpdateSink",
    "Venue",
    "paper_venue",
]
