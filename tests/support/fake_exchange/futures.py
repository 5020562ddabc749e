"""The USDⓈ-M futures side of the fake exchange (Binance ``/fapi``): perpetual markets, one
futures account with a USDT wallet, net positions (one-way mode), leverage and margin type per
symbol, mark price and funding.

Orders are matched by a :class:`~.book.MatchingEngine` of their own (the futures books are not
the spot books); it is given balances no order can exhaust, since a futures order is paid for
with margin, not with the asset. What the account gains or pays is kept here: each fill's
commission (in USDT, on notional) and realized profit when it reduces a position, and funding.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from .book import ZERO, BinanceError, Event, Fill, MatchingEngine, Order, SymbolRules

UNLIMITED = Decimal("1e15")
HOUR_MS = 3_600_000
FUNDING_INTERVAL_MS = 8 * HOUR_MS
DEFAULT_LEVERAGE = 20
MAX_LEVERAGE = 125
# 2025-07-01 00:00 UTC: the default funding history spans July 2025, as the bundled bars do.
JULY_2025_MS = 1_751_328_000_000

# name: (base, tick, step, min notional, price precision, quantity precision, start price)
_PERPETUALS: dict[str, tuple[str, str, str, str, int, int, str]] = {
    "BTCUSDT": ("BTC", "0.10", "0.001", "100", 2, 3, "107000"),
    "ETHUSDT": ("ETH", "0.01", "0.001", "20", 2, 3, "2480"),
}

# Binance's BTCUSDT brackets (abridged): notional cap, max leverage, maintenance rate, cum.
_BRACKETS: tuple[tuple[int, int, str, str], ...] = (
    (50_000, 125, "0.004", "0"),
    (600_000, 100, "0.005", "50"),
    (3_000_000, 75, "0.0065", "950"),
    (12_000_000, 50, "0.01", "11450"),
)


def futures_exchange_info() -> dict[str, Any]:
    """``GET /fapi/v1/exchangeInfo`` for the perpetuals the fake lists."""
    symbols = []
    for name, (base, tick, step, notional, pp, qp, _) in _PERPETUALS.items():
        symbols.append(
            {
                "symbol": name,
                "pair": name,
                "contractType": "PERPETUAL",
                "deliveryDate": 4133404800000,
                "onboardDate": 1569398400000,
                "status": "TRADING",
                "maintMarginPercent": "2.5000",
                "requiredMarginPercent": "5.0000",
                "baseAsset": base,
                "quoteAsset": "USDT",
                "marginAsset": "USDT",
                "pricePrecision": pp,
                "quantityPrecision": qp,
                "baseAssetPrecision": 8,
                "quotePrecision": 8,
                "underlyingType": "COIN",
                "underlyingSubType": [],
                "triggerProtect": "0.0500",
                "liquidationFee": "0.012500",
                "marketTakeBound": "0.05",
                "maxMoveOrderLimit": 10000,
                "filters": [
                    {
                        "filterType": "PRICE_FILTER",
                        "minPrice": tick,
                        "maxPrice": "4529764",
                        "tickSize": tick,
                    },
                    {"filterType": "LOT_SIZE", "stepSize": step, "maxQty": "1000", "minQty": step},
                    {
                        "filterType": "MARKET_LOT_SIZE",
                        "stepSize": step,
                        "maxQty": "120",
                        "minQty": step,
                    },
                    {"filterType": "MAX_NUM_ORDERS", "limit": 200},
                    {"filterType": "MAX_NUM_ALGO_ORDERS", "limit": 10},
                    {"filterType": "MIN_NOTIONAL", "notional": notional},
                    {
                        "filterType": "PERCENT_PRICE",
                        "multiplierUp": "1.0500",
                        "multiplierDecimal": "4",
                        "multiplierDown": "0.9500",
                    },
                ],
                "orderTypes": ["LIMIT", "MARKET", "STOP", "STOP_MARKET", "TAKE_PROFIT"],
                "timeInForce": ["GTC", "IOC", "FOK", "GTX", "GTD"],
            }
        )
    return {
        "timezone": "UTC",
        "futuresType": "U_MARGINED",
        "rateLimits": [],
        "exchangeFilters": [],
        "assets": [{"asset": "USDT", "marginAvailable": True, "autoAssetExchange": "-10000"}],
        "symbols": symbols,
    }


def default_funding(
    symbol: str, start_ms: int = JULY_2025_MS, events: int = 93
) -> list[FundingEvent]:
    """A deterministic funding history every 8 hours from ``start_ms``: rates around 1 bp,
    some negative, and a mark price that drifts."""
    base = Decimal(_PERPETUALS[symbol][6])
    out = []
    for k in range(events):
        rate = Decimal(f"{0.0001 + 0.00015 * math.sin(k / 3.0):.8f}")
        mark = (base * (1 + Decimal(k) / 1000)).quantize(Decimal("0.01"))
        out.append(FundingEvent(start_ms + k * FUNDING_INTERVAL_MS, rate, mark))
    return out


@dataclass(frozen=True)
class FundingEvent:
    """One row of ``GET /fapi/v1/fundingRate``."""

    time_ms: int
    rate: Decimal
    mark_price: Decimal


@dataclass(frozen=True)
class FuturesFill:
    """A futures execution: the matched fill with its USDT commission and realized profit."""

    fill: Fill
    commission: Decimal
    realized_pnl: Decimal
    maker: bool


@dataclass
class Position:
    amount: Decimal = ZERO  # signed: > 0 long, < 0 short
    entry_price: Decimal = ZERO
    update_ms: int = 0


@dataclass(frozen=True)
class Income:
    """A row of ``GET /fapi/v1/income`` (funding fees only)."""

    tran_id: int
    symbol: str
    income: Decimal
    time_ms: int


@dataclass
class FuturesAccount:
    """The futures account and its own matching engine."""

    clock_ms: Callable[[], int]
    wallet: Decimal = Decimal("10000")
    maker_fee: Decimal = Decimal("0.0002")
    taker_fee: Decimal = Decimal("0.0005")
    engine: MatchingEngine = field(init=False)
    positions: dict[str, Position] = field(default_factory=dict)
    leverage: dict[str, int] = field(default_factory=dict)
    margin_type: dict[str, str] = field(default_factory=dict)
    fills: list[FuturesFill] = field(default_factory=list)
    funding: dict[str, list[FundingEvent]] = field(default_factory=dict)
    income: list[Income] = field(default_factory=list)
    mark_prices: dict[str, Decimal] = field(default_factory=dict)
    funding_hours: dict[str, int] = field(default_factory=dict)
    _seen_fills: int = 0

    def __post_init__(self) -> None:
        rules = {}
        for raw in futures_exchange_info()["symbols"]:
            r = SymbolRules.from_exchange_info(raw)
            # GTX (post-only) orders are matched as the spot engine's LIMIT_MAKER.
            rules[r.symbol] = dataclasses.replace(r, order_types=("LIMIT", "MARKET", "LIMIT_MAKER"))
        assets = {a for r in rules.values() for a in (r.base, r.quote)}
        self.engine = MatchingEngine(
            rules,
            balances=dict.fromkeys(assets, UNLIMITED),
            maker_fee=ZERO,
            taker_fee=ZERO,
            clock_ms=self.clock_ms,
        )
        for name in rules:
            self.positions[name] = Position()
            self.leverage[name] = DEFAULT_LEVERAGE
            self.margin_type[name] = "CROSSED"
            self.funding[name] = default_funding(name)
            self.funding_hours[name] = 8

    # -- bookkeeping --------------------------------------------------------------------------

    def settle(self) -> list[Event]:
        """Book fills the engine made since the last call; returns the engine's events."""
        events = self.engine.drain_events()
        new = self.engine.fills[self._seen_fills :]
        self._seen_fills = len(self.engine.fills)
        for fill in new:
            self._book(fill)
        return events

    def _book(self, fill: Fill) -> None:
        pos = self.positions[fill.symbol]
        signed = fill.qty if fill.side == "BUY" else -fill.qty
        realized = ZERO
        if pos.amount != ZERO and (pos.amount > 0) != (signed > 0):
            closed = min(abs(signed), abs(pos.amount))
            direction = Decimal(1) if pos.amount > 0 else Decimal(-1)
            realized = (fill.price - pos.entry_price) * closed * direction
        new_amount = pos.amount + signed
        if new_amount == ZERO:
            pos.entry_price = ZERO
        elif pos.amount == ZERO or (pos.amount > 0) != (new_amount > 0):
            pos.entry_price = fill.price
        elif (pos.amount > 0) == (signed > 0):
            pos.entry_price = (pos.entry_price * abs(pos.amount) + fill.price * fill.qty) / abs(
                new_amount
            )
        pos.amount = new_amount
        pos.update_ms = fill.time_ms
        rate = self.maker_fee if fill.is_maker else self.taker_fee
        commission = (fill.quote_qty * rate).quantize(Decimal("0.00000001"))
        self.wallet += realized - commission
        self.fills.append(FuturesFill(fill, commission, realized, fill.is_maker))

    def mark_price(self, symbol: str) -> Decimal:
        if symbol in self.mark_prices:
            return self.mark_prices[symbol]
        book = self.engine.books[symbol]
        if book.last_price is not None:
            return book.last_price
        _, bids, asks = self.engine.depth(symbol, 1)
        if bids and asks:
            return (bids[0][0] + asks[0][0]) / 2
        return Decimal(_PERPETUALS[symbol][6])

    def unrealized(self, symbol: str) -> Decimal:
        pos = self.positions[symbol]
        return (self.mark_price(symbol) - pos.entry_price) * pos.amount if pos.amount else ZERO

    def pay_funding(self, symbol: str, rate: Decimal, time_ms: int) -> Decimal:
        """A funding event now: open positions pay (or get) ``rate`` of their notional at the
        mark price; positive rates make longs pay. Returns what the account got."""
        self.engine.rules_for(symbol)
        mark = self.mark_price(symbol)
        amount = (-self.positions[symbol].amount * mark * rate).quantize(Decimal("0.00000001"))
        self.funding[symbol].append(FundingEvent(time_ms, rate, mark))
        if self.positions[symbol].amount != ZERO:
            self.wallet += amount
            self.income.append(Income(len(self.income) + 1, symbol, amount, time_ms))
        return amount

    # -- wire formats -------------------------------------------------------------------------

    def order_json(self, o: Order) -> dict[str, Any]:
        avg = o.cumulative_quote_qty / o.executed_qty if o.executed_qty else ZERO
        kind = "LIMIT" if o.type == "LIMIT_MAKER" else o.type
        tif = "GTX" if o.type == "LIMIT_MAKER" else o.time_in_force
        return {
            "orderId": o.order_id,
            "symbol": o.symbol,
            "status": o.status,
            "clientOrderId": o.client_order_id,
            "price": _fmt(o.price),
            "avgPrice": _fmt(avg),
            "origQty": _fmt(o.orig_qty),
            "executedQty": _fmt(o.executed_qty),
            "cumQty": _fmt(o.executed_qty),
            "cumQuote": _fmt(o.cumulative_quote_qty),
            "timeInForce": tif,
            "type": kind,
            "reduceOnly": False,
            "closePosition": False,
            "side": o.side,
            "positionSide": "BOTH",
            "stopPrice": "0",
            "workingType": "CONTRACT_PRICE",
            "priceProtect": False,
            "origType": kind,
            "priceMatch": "NONE",
            "selfTradePreventionMode": "EXPIRE_MAKER",
            "goodTillDate": 0,
            "time": o.time_ms,
            "updateTime": o.update_time_ms,
        }

    def trade_json(self, f: FuturesFill) -> dict[str, Any]:
        fill = f.fill
        return {
            "buyer": fill.side == "BUY",
            "commission": _fmt(f.commission),
            "commissionAsset": "USDT",
            "id": fill.trade_id,
            "maker": f.maker,
            "orderId": fill.order_id,
            "price": _fmt(fill.price),
            "qty": _fmt(fill.qty),
            "quoteQty": _fmt(fill.quote_qty),
            "realizedPnl": _fmt(f.realized_pnl),
            "side": fill.side,
            "positionSide": "BOTH",
            "symbol": fill.symbol,
            "time": fill.time_ms,
        }

    def position_json(self, symbol: str) -> dict[str, Any]:
        pos = self.positions[symbol]
        mark = self.mark_price(symbol)
        notional = pos.amount * mark
        leverage = self.leverage[symbol]
        isolated = self.margin_type[symbol] == "ISOLATED"
        margin = abs(notional) / leverage
        return {
            "symbol": symbol,
            "positionSide": "BOTH",
            "positionAmt": _fmt(pos.amount),
            "entryPrice": _fmt(pos.entry_price),
            "breakEvenPrice": _fmt(pos.entry_price),
            "markPrice": _fmt(mark),
            "unRealizedProfit": _fmt(self.unrealized(symbol)),
            "liquidationPrice": "0",
            "isolatedMargin": _fmt(margin if isolated else ZERO),
            "notional": _fmt(notional),
            "marginAsset": "USDT",
            "isolatedWallet": _fmt(margin if isolated else ZERO),
            "initialMargin": _fmt(margin),
            "maintMargin": _fmt(abs(notional) * Decimal("0.004")),
            "positionInitialMargin": _fmt(margin),
            "openOrderInitialMargin": "0",
            "adl": 0,
            "bidNotional": "0",
            "askNotional": "0",
            "updateTime": pos.update_ms,
            # v2 fields
            "leverage": str(leverage),
            "marginType": "isolated" if isolated else "cross",
            "maxNotionalValue": "50000000",
            "isAutoAddMargin": "false",
        }

    def account_json(self, now_ms: int) -> dict[str, Any]:
        unrealized = sum((self.unrealized(s) for s in self.positions), ZERO)
        initial = sum(
            (
                abs(p.amount * self.mark_price(s)) / self.leverage[s]
                for s, p in self.positions.items()
            ),
            ZERO,
        )
        margin_balance = self.wallet + unrealized
        available = margin_balance - initial
        asset = {
            "asset": "USDT",
            "walletBalance": _fmt(self.wallet),
            "unrealizedProfit": _fmt(unrealized),
            "marginBalance": _fmt(margin_balance),
            "maintMargin": "0",
            "initialMargin": _fmt(initial),
            "positionInitialMargin": _fmt(initial),
            "openOrderInitialMargin": "0",
            "crossWalletBalance": _fmt(self.wallet),
            "crossUnPnl": _fmt(unrealized),
            "availableBalance": _fmt(available),
            "maxWithdrawAmount": _fmt(available),
            "marginAvailable": True,
            "updateTime": now_ms,
        }
        positions = [
            {
                "symbol": s,
                "positionSide": "BOTH",
                "positionAmt": _fmt(p.amount),
                "unrealizedProfit": _fmt(self.unrealized(s)),
                "isolatedMargin": "0",
                "notional": _fmt(p.amount * self.mark_price(s)),
                "isolatedWallet": "0",
                "initialMargin": _fmt(abs(p.amount * self.mark_price(s)) / self.leverage[s]),
                "maintMargin": "0",
                "updateTime": p.update_ms,
                "leverage": str(self.leverage[s]),
                "isolated": self.margin_type[s] == "ISOLATED",
                "entryPrice": _fmt(p.entry_price),
            }
            for s, p in self.positions.items()
            if p.amount != ZERO
        ]
        return {
            "feeTier": 0,
            "canTrade": True,
            "canDeposit": True,
            "canWithdraw": True,
            "updateTime": 0,
            "multiAssetsMargin": False,
            "tradeGroupId": -1,
            "totalInitialMargin": _fmt(initial),
            "totalMaintMargin": "0",
            "totalWalletBalance": _fmt(self.wallet),
            "totalUnrealizedProfit": _fmt(unrealized),
            "totalMarginBalance": _fmt(margin_balance),
            "totalPositionInitialMargin": _fmt(initial),
            "totalOpenOrderInitialMargin": "0",
            "totalCrossWalletBalance": _fmt(self.wallet),
            "totalCrossUnPnl": _fmt(unrealized),
            "availableBalance": _fmt(available),
            "maxWithdrawAmount": _fmt(available),
            "assets": [asset],
            "positions": positions,
        }

    def brackets_json(self, symbol: str | None) -> list[dict[str, Any]]:
        names = [symbol] if symbol is not None else sorted(self.positions)
        out = []
        for name in names:
            self.engine.rules_for(name)
            floor = 0
            brackets = []
            for i, (cap, lev, mmr, cum) in enumerate(_BRACKETS, start=1):
                brackets.append(
                    {
                        "bracket": i,
                        "initialLeverage": lev,
                        "notionalCap": cap,
                        "notionalFloor": floor,
                        "maintMarginRatio": float(mmr),
                        "cum": float(cum),
                    }
                )
                floor = cap
            out.append({"symbol": name, "notionalCoef": 1.0, "brackets": brackets})
        return out


def set_leverage(account: FuturesAccount, symbol: str, raw: str | None) -> dict[str, Any]:
    """``POST /fapi/v1/leverage``."""
    account.engine.rules_for(symbol)
    try:
        leverage = int(raw or "")
    except ValueError:
        raise BinanceError(
            -1102, "Mandatory parameter 'leverage' was not sent, was empty/null, or malformed."
        ) from None
    if not 1 <= leverage <= MAX_LEVERAGE:
        raise BinanceError(-4028, f"Leverage {leverage} is not valid")
    account.leverage[symbol] = leverage
    return {"leverage": leverage, "maxNotionalValue": "50000000", "symbol": symbol}


def set_margin_type(account: FuturesAccount, symbol: str, raw: str | None) -> dict[str, Any]:
    """``POST /fapi/v1/marginType``: -4046 when it is already so, as Binance answers."""
    account.engine.rules_for(symbol)
    if raw not in ("ISOLATED", "CROSSED"):
        raise BinanceError(-1116, "Invalid marginType.")
    if account.margin_type[symbol] == raw:
        raise BinanceError(-4046, "No need to change margin type.")
    if account.positions[symbol].amount != ZERO:
        raise BinanceError(-4048, "Margin type cannot be changed if there exists position.")
    account.margin_type[symbol] = raw
    return {"code": 200, "msg": "success"}


def funding_rows(
    account: FuturesAccount,
    symbol: str | None,
    start_ms: int | None,
    end_ms: int | None,
    limit: int,
) -> list[dict[str, Any]]:
    """``GET /fapi/v1/fundingRate``: ascending; from ``startTime`` when given, else the most
    recent ``limit``."""
    names = [symbol] if symbol is not None else sorted(account.funding)
    rows = [
        (e, name)
        for name in names
        for e in account.funding[name]
        if (start_ms is None or e.time_ms >= start_ms) and (end_ms is None or e.time_ms <= end_ms)
    ]
    rows.sort(key=lambda r: (r[0].time_ms, r[1]))
    rows = rows[:limit] if start_ms is not None else rows[-limit:]
    return [
        {
            "symbol": name,
            "fundingTime": e.time_ms,
            "fundingRate": f"{e.rate:.8f}",
            "markPrice": f"{e.mark_price:.8f}",
        }
        for e, name in rows
    ]


def premium_index(account: FuturesAccount, symbol: str, now_ms: int) -> dict[str, Any]:
    """``GET /fapi/v1/premiumIndex``: mark price and the next funding."""
    mark = account.mark_price(symbol)
    last = account.funding[symbol][-1] if account.funding[symbol] else None
    next_ms = now_ms - now_ms % FUNDING_INTERVAL_MS + FUNDING_INTERVAL_MS
    return {
        "symbol": symbol,
        "markPrice": _fmt(mark),
        "indexPrice": _fmt(mark),
        "estimatedSettlePrice": _fmt(mark),
        "lastFundingRate": f"{last.rate:.8f}" if last else "0.00010000",
        "interestRate": "0.00010000",
        "nextFundingTime": next_ms,
        "time": now_ms,
    }


def funding_info(account: FuturesAccount) -> list[dict[str, Any]]:
    """``GET /fapi/v1/fundingInfo``: as on Binance, only the symbols whose funding interval or
    caps were adjusted from the 8-hour default."""
    return [
        {
            "symbol": name,
            "adjustedFundingRateCap": "0.02000000",
            "adjustedFundingRateFloor": "-0.02000000",
            "fundingIntervalHours": hours,
            "disclaimer": False,
        }
        for name, hours in sorted(account.funding_hours.items())
        if hours != 8
    ]


def income_rows(
    account: FuturesAccount, params: Mapping[str, str], limit: int
) -> list[dict[str, Any]]:
    """``GET /fapi/v1/income`` (``FUNDING_FEE`` rows; other income types are empty)."""
    kind = params.get("incomeType")
    if kind not in (None, "FUNDING_FEE"):
        return []
    symbol = params.get("symbol")
    start = int(params["startTime"]) if "startTime" in params else None
    end = int(params["endTime"]) if "endTime" in params else None
    rows = [
        i
        for i in account.income
        if (symbol is None or i.symbol == symbol)
        and (start is None or i.time_ms >= start)
        and (end is None or i.time_ms <= end)
    ][:limit]
    return [
        {
            "symbol": i.symbol,
            "incomeType": "FUNDING_FEE",
            "income": _fmt(i.income),
            "asset": "USDT",
            "info": "FUNDING_FEE",
            "time": i.time_ms,
            "tranId": i.tran_id,
            "tradeId": "",
        }
        for i in rows
    ]


def _fmt(value: Decimal) -> str:
    return f"{value:.8f}"
