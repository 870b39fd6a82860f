"""Exchange filters from exchangeInfo: rounding and the checks run before an order is sent."""

from __future__ import annotations

from decimal import Decimal

from quantumedge.execution.filters import SymbolFilters, split_symbol
from quantumedge.execution.orders import OrderType

D = Decimal

INFO = {
    "symbol": "BTCUSDT",
    "baseAsset": "BTC",
    "quoteAsset": "USDT",
    "orderTypes": ["LIMIT", "MARKET"],
    "filters": [
        {
            "filterType": "PRICE_FILTER",
            "minPrice": "0.01000000",
            "maxPrice": "1000000.00000000",
            "tickSize": "0.01000000",
        },
        {"filterType": "LOT_SIZE", "minQty": "0.00001000", "maxQty": "9000.00000000", "stepSize": "0.00001000"},
        {"filterType": "MARKET_LOT_SIZE", "minQty": "0.00000000", "maxQty": "50.00000000", "stepSize": "0.00000000"},
        {
            "filterType": "NOTIONAL",
            "minNotional": "5.00000000",
            "applyMinToMarket": True,
            "maxNotional": "9000000.00000000",
            "applyMaxToMarket": False,
        },
        {"filterType": "MAX_NUM_ORDERS", "maxNumOrders": 200},
    ],
}


def test_parsed_from_exchange_info() -> None:
    f = SymbolFilters.from_exchange_info(INFO)
    assert (f.tick_size, f.step_size, f.min_notional, f.max_num_orders) == (D("0.01"), D("0.00001"), D("5"), 200)
    assert f.market_max_qty == D("50") and f.base_asset == "BTC" and f.quote_asset == "USDT"


def test_rounding_to_tick_and_step() -> None:
    f = SymbolFilters.from_exchange_info(INFO)
    assert f.round_quantity(D("0.123456789")) == D("0.12345")
    assert f.round_price(D("100.005"), "down") == D("100.00")
    assert f.round_price(D("100.001"), "up") == D("100.01")
    assert f.round_price(D("100.006")) == D("100.01")


def test_checks_name_the_filter_like_binance() -> None:
    f = SymbolFilters.from_exchange_info(INFO)
    assert f.check(OrderType.LIMIT, D("0.1"), D("100.001")).message == "Filter failure: PRICE_FILTER"
    assert f.check(OrderType.LIMIT, D("0.000001"), D("100")).message == "Filter failure: LOT_SIZE"
    assert f.check(OrderType.MARKET, D("0.01"), reference_price=D("100")).message == "Filter failure: NOTIONAL"
    assert f.check(OrderType.MARKET, D("51"), reference_price=D("100")).message == "Filter failure: MARKET_LOT_SIZE"
    assert f.check(OrderType.LIMIT, D("0.1"), D("100"), open_orders=200).message == "Filter failure: MAX_NUM_ORDERS"
    violation = f.check(OrderType.LIMIT, D("0.1"), D("100.001"))
    assert violation.code == "-1013"
    assert f.check(OrderType.MARKET, D("0.1"), reference_price=D("100")) is None


def test_legacy_min_notional_filter() -> None:
    info = {**INFO, "filters": [{"filterType": "MIN_NOTIONAL", "minNotional": "10", "applyToMarket": False}]}
    f = SymbolFilters.from_exchange_info(info)
    assert f.check(OrderType.LIMIT, D("0.05"), D("100")).message == "Filter failure: MIN_NOTIONAL"
    assert f.check(OrderType.MARKET, D("0.05"), reference_price=D("100")) is None


def test_split_symbol() -> None:
    assert split_symbol("ETHUSDT") == ("ETH", "USDT")
    assert split_symbol("ETHBTC") == ("ETH", "BTC")
