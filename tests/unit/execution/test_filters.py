"""Exchange filters from exchangeInfo: rounding and the checks run before an order is sent."""

from __future__ import annotations

from decimal import Decimal

from quantumedge.execution.domain.filters import SymbolFilters, split_symbol
from quantumedge.execution.domain.orders import OrderType, Side

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


# Binance "Filters" formats, as exchangeInfo lists them.
PROTECTION_INFO = {
    **INFO,
    "filters": [
        *INFO["filters"],
        {"filterType": "MAX_NUM_ALGO_ORDERS", "maxNumAlgoOrders": 5},
        {"filterType": "MAX_NUM_ORDER_LISTS", "maxNumOrderLists": 20},
        {
            "filterType": "PERCENT_PRICE_BY_SIDE",
            "bidMultiplierUp": "1.2",
            "bidMultiplierDown": "0.2",
            "askMultiplierUp": "5",
            "askMultiplierDown": "0.8",
            "avgPriceMins": 1,
        },
        {
            "filterType": "TRAILING_DELTA",
            "minTrailingAboveDelta": 10,
            "maxTrailingAboveDelta": 2000,
            "minTrailingBelowDelta": 10,
            "maxTrailingBelowDelta": 2000,
        },
    ],
}


def test_protection_filters_are_parsed() -> None:
    f = SymbolFilters.from_exchange_info(PROTECTION_INFO)
    assert (f.max_num_algo_orders, f.max_num_order_lists) == (5, 20)
    assert f.percent_price_by_side.band(Side.BUY, D("100")) == (D("20.0"), D("120.0"))
    assert f.percent_price_by_side.band(Side.SELL, D("100")) == (D("80.0"), D("500"))
    assert f.trailing_delta.bounds(Side.SELL) == (10, 2000)


def test_protection_filters_are_checked_like_binance() -> None:
    f = SymbolFilters.from_exchange_info(PROTECTION_INFO)
    avg = D("100")
    fail = "Filter failure: "
    buy_far = f.check(OrderType.LIMIT, D("0.1"), D("130"), side=Side.BUY, average_price=avg)
    assert buy_far.message == fail + "PERCENT_PRICE_BY_SIDE"
    assert f.check(OrderType.LIMIT, D("0.1"), D("110"), side=Side.BUY, average_price=avg) is None
    stop_off_tick = f.check(OrderType.MARKET, D("0.1"), reference_price=avg, stop_price=D("95.005"), side=Side.SELL)
    assert stop_off_tick.message == fail + "PRICE_FILTER"
    wide = f.check(OrderType.MARKET, D("0.1"), reference_price=avg, trailing_delta=D(2500), side=Side.SELL)
    assert wide.message == fail + "TRAILING_DELTA"
    algo_full = f.check(OrderType.MARKET, D("0.1"), reference_price=avg, stop_price=D(95), open_algo_orders=5)
    assert algo_full.message == fail + "MAX_NUM_ALGO_ORDERS"
    assert f.check_list(open_orders=0, open_algo_orders=0, open_order_lists=20).message == fail + "MAX_NUM_ORDER_LISTS"
    assert f.check_list(open_orders=199, open_algo_orders=0, open_order_lists=0).message == fail + "MAX_NUM_ORDERS"
    assert f.check_list(open_orders=10, open_algo_orders=4, open_order_lists=3) is None


def test_protection_is_fitted_inside_the_filters_never_further_from_the_market() -> None:
    f = SymbolFilters.from_exchange_info(PROTECTION_INFO)
    # A sell take-profit above 5x the average comes down to the band; one inside stays.
    assert f.fit_take_profit(Side.SELL, D("600"), D("100")) == D("500")
    assert f.fit_take_profit(Side.SELL, D("150"), D("100")) == D("150")
    # A buy take-profit (covering a short) below 0.2x comes up to it.
    assert f.fit_take_profit(Side.BUY, D("10"), D("100")) == D("20")
    assert f.fit_trailing_delta(Side.SELL, D(5000)) == D(2000) and f.fit_trailing_delta(Side.BUY, D(5)) == D(10)
    assert f.fit_stop_price(D("95.004")) == D("95.00") and f.fit_stop_price(D("0.001")) == D("0.01")
