"""Small graphs and strategies shared by tests."""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import Field

from tradegraph.config import (
    BarSourceConfig,
    DataConfig,
    GraphConfig,
    InstrumentConfig,
    PortfolioConfig,
    RiskConfig,
    StrategyConfig,
    VenueConfig,
)
from tradegraph.config.models import FillAt, ReportConfig
from tradegraph.contracts import (
    Bar,
    ExecutionReport,
    KillSwitchChanged,
    Message,
    OrderFilled,
    OrderSide,
    OrderType,
    RiskRejected,
    TimerFired,
    TradeTick,
)
from tradegraph.data.catalog import BarArrays
from tradegraph.strategies.base import Strategy, StrategyParams
from tradegraph.strategies.registry import register_strategy

MINUTE_NS = 60_000_000_000
T0 = 1_750_000_000_000_000_000 - (1_750_000_000_000_000_000 % MINUTE_NS)


def btc_perpetual(**overrides: Any) -> InstrumentConfig:
    """The fake exchange's USDⓈ-M ``BTCUSDT`` perpetual as an instrument (``BTCUSDT-PERP``)."""
    fields: dict[str, Any] = {
        "symbol": "BTCUSDT-PERP",
        "venue": "BINANCE",
        "base": "BTC",
        "quote": "USDT",
        "kind": "perpetual",
        "tick_size": 0.1,
        "lot_size": 0.001,
        "min_quantity": 0.001,
        "min_notional": 100.0,
        "maker_fee": 0.0002,
        "taker_fee": 0.0005,
        "max_leverage": 125.0,
    }
    fields.update(overrides)
    return InstrumentConfig(**fields)


def btc_instrument(**overrides: Any) -> InstrumentConfig:
    fields: dict[str, Any] = {
        "symbol": "BTCUSDT",
        "venue": "BINANCE",
        "base": "BTC",
        "quote": "USDT",
        "tick_size": 0.01,
        "lot_size": 0.00001,
        "min_quantity": 0.00001,
        "min_notional": 10.0,
        "maker_fee": 0.001,
        "taker_fee": 0.001,
    }
    fields.update(overrides)
    return InstrumentConfig(**fields)


def graph_config(
    strategies: tuple[StrategyConfig, ...],
    *,
    fill_at: FillAt = FillAt.NEXT_OPEN,
    risk: RiskConfig | None = None,
    starting_cash: float = 1_000_000.0,
    latency_ms: float = 0.0,
) -> GraphConfig:
    return GraphConfig(
        name="test",
        instruments=(btc_instrument(),),
        venues=(VenueConfig(name="BINANCE", fill_at=fill_at, latency_ms=latency_ms),),
        data=DataConfig(bars=(BarSourceConfig(path="sample:BTCUSDT_1m"),)),
        strategies=strategies,
        risk=risk or RiskConfig(price_band_pct=None),
        portfolio=PortfolioConfig(starting_cash=starting_cash),
        report=ReportConfig(html=False),
    )


def ramp_bars(closes: list[float], symbol: str = "BTCUSDT") -> BarArrays:
    """Bars at consecutive minutes from T0 whose open is the previous close."""
    close = np.array(closes, dtype=np.float64)
    open_ = np.concatenate(([close[0]], close[:-1]))
    return BarArrays(
        symbol=symbol,
        venue="BINANCE",
        interval_ns=MINUTE_NS,
        ts_open_ns=T0 + np.arange(len(closes), dtype=np.int64) * MINUTE_NS,
        open=open_,
        high=np.maximum(open_, close),
        low=np.minimum(open_, close),
        close=close,
        volume=np.full(len(closes), 100.0),
    )


class ScriptParams(StrategyParams):
    buy_on_bar: int = -1
    timer_offsets_s: tuple[float, ...] = ()
    cancel_timer: str = ""
    raise_on_bar: int = -1
    buy_on_trade: int = -1
    buy_on_timers: bool = False
    sell_on_bar: int = -1
    quantity: float = 1.0


@register_strategy("test_script")
class ScriptedStrategy(Strategy):
    """Does exactly what its params say and records everything it receives."""

    Params = ScriptParams
    params: ScriptParams

    def on_start(self) -> None:
        self.seen: list[tuple[int, str, str]] = []
        self.bar_count = 0

    def _note(self, msg: Message, detail: str = "") -> None:
        self.seen.append((self.now_ns(), type(msg).__name__, detail))

    def on_bar(self, bar: Bar) -> None:
        self.bar_count += 1
        self._note(bar, str(bar.close))
        if self.bar_count == 1:
            for i, offset in enumerate(self.params.timer_offsets_s):
                self.set_timer(f"t{i}", bar.ts_event_ns + round(offset * 1e9))
            if self.params.cancel_timer:
                self.cancel_timer(self.params.cancel_timer)
        if self.bar_count == self.params.raise_on_bar:
            raise RuntimeError("scripted failure")
        if self.bar_count == self.params.buy_on_bar:
            self.submit_order(
                bar.instrument_id, OrderSide.BUY, self.params.quantity, OrderType.MARKET
            )
        if self.bar_count == self.params.sell_on_bar:
            self.submit_order(
                bar.instrument_id, OrderSide.SELL, self.params.quantity, OrderType.MARKET
            )

    def on_trade(self, tick: TradeTick) -> None:
        self.trade_count = getattr(self, "trade_count", 0) + 1
        self._note(tick, f"{tick.price}")
        if self.trade_count == self.params.buy_on_trade:
            self.submit_order(tick.instrument_id, OrderSide.BUY, self.params.quantity)

    def on_timer(self, timer: TimerFired) -> None:
        self._note(timer, timer.name)
        if self.params.buy_on_timers:
            self.buy(next(iter(self.instruments)), self.params.quantity)

    def on_fill(self, fill: OrderFilled) -> None:
        self._note(fill, f"{fill.last_qty}@{fill.last_px}")

    def on_risk_rejected(self, event: RiskRejected) -> None:
        self._note(event, event.reason.value)

    def on_kill_switch(self, event: KillSwitchChanged) -> None:
        self._note(event, str(event.tripped))


class TradeBidderParams(StrategyParams):
    buy_on_trades: tuple[int, ...] = ()
    bid_on_trades: tuple[int, ...] = ()
    quantity: float = 0.01
    discount_pct: float = 2.0


class TradeBidder(Strategy):
    """Counts trade ticks (the count survives restarts); on the listed ones buys at market, or
    places a limit buy ``discount_pct`` below the trade that rests at the venue."""

    Params = TradeBidderParams
    params: TradeBidderParams
    trades = 0

    def on_trade(self, tick: TradeTick) -> None:
        self.trades += 1
        if self.trades in self.params.buy_on_trades:
            self.submit_order(tick.instrument_id, OrderSide.BUY, self.params.quantity)
        if self.trades in self.params.bid_on_trades:
            price = round(tick.price * (1.0 - self.params.discount_pct / 100.0), 2)
            self.submit_order(
                tick.instrument_id,
                OrderSide.BUY,
                self.params.quantity,
                OrderType.LIMIT,
                limit_price=price,
            )

    def strategy_state(self) -> dict[str, Any]:
        return {"trades": self.trades}

    def restore_strategy_state(self, state: dict[str, Any]) -> None:
        self.trades = int(state["trades"])


class AlgoOrderParams(StrategyParams):
    submit_on_bar: int = 1
    side: OrderSide = OrderSide.BUY
    quantity: float = 1.0
    algo: str = "twap"
    limit_price: float | None = None
    algo_params: dict[str, Any] = Field(default_factory=dict)


@register_strategy("test_algo")
class AlgoOrderStrategy(Strategy):
    """Submits one parent order on a chosen bar and keeps the execution reports it gets."""

    Params = AlgoOrderParams
    params: AlgoOrderParams

    def on_start(self) -> None:
        self.bar_count = 0
        self.parent_id = ""
        self.reports: list[ExecutionReport] = []

    def on_bar(self, bar: Bar) -> None:
        self.bar_count += 1
        p = self.params
        if self.bar_count == p.submit_on_bar:
            self.parent_id = self.submit_algo_order(
                bar.instrument_id,
                p.side,
                p.quantity,
                p.algo,
                limit_price=p.limit_price,
                **p.algo_params,
            )

    def on_execution_report(self, report: ExecutionReport) -> None:
        self.reports.append(report)
