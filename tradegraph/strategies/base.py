"""The base class of every strategy: message dispatch, bookkeeping, the order API, safety.

A strategy is a component (see ``tradegraph.contracts.protocols.Component``). Subclasses
override the ``on_*`` hooks and call the order API; the base keeps the strategy's own position
and open orders up to date *before* a hook runs, so a subclass cannot corrupt them.

User code runs behind a safe wrapper: an exception in a hook becomes a ``StrategyError`` event
naming the strategy, the strategy stops, and the rest of the graph carries on.
"""

from __future__ import annotations

import os
import traceback
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, ValidationError

from tradegraph.config.models import StrategyConfig
from tradegraph.contracts import (
    Bar,
    CancelIntent,
    CapitalAllocated,
    Clock,
    ExecutionReport,
    FeedStatus,
    FundingPaid,
    FundingRate,
    IdGenerator,
    Instrument,
    KillSwitchChanged,
    Message,
    OrderAccepted,
    OrderBookSnapshot,
    OrderCancelled,
    OrderFilled,
    OrderIntent,
    OrderRejected,
    OrderSide,
    OrderType,
    Outbox,
    PositionLiquidated,
    QuoteTick,
    RiskRejected,
    StrategyError,
    TimeInForce,
    TimerFired,
    TradeTick,
    TrailingOffsetType,
    strategy_component_id,
)
from tradegraph.contracts.marks import mark_price
from tradegraph.contracts.state import ComponentState, StateRecord
from tradegraph.errors import ConfigError, OrderPathError, StrategyLoadError
from tradegraph.execution.algorithms import (
    ALGO_TIMER_PREFIX,
    AlgoName,
    ParentOrderBook,
    ParentOrderBookState,
    ParentStatus,
    Urgency,
    choose_algorithm,
)
from tradegraph.strategies.bar_aggregator import BarAggregator, BarAggregatorState

# A fill leaving less than this fraction of the order open completes it: venues compute
# ``leaves_qty`` in floating point and may leave rounding dust instead of an exact zero.
_LEAVES_TOLERANCE = 1e-9
# A position smaller than this fraction of the quantities that produced it is rounding dust
# (0.003 + 0.007 - 0.01 is not exactly 0.0) and is treated as flat.
_FLAT_TOLERANCE = 1e-9


class StrategyParams(BaseModel):
    """Base for a strategy's ``Params`` model: frozen, unknown keys are errors.

    Example:
        >>> class MyParams(StrategyParams):
        ...     lookback: int = Field(default=20, gt=0)
    """

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


@dataclass(frozen=True, slots=True)
class OpenOrder:
    """An order the strategy sent that is not finished yet, as the strategy knows it.

    Attributes:
        intent: The intent as submitted; ``intent.intent_id`` is the client order id.
        accepted: The venue has acknowledged the order (it may be resting).
        filled_quantity: Sum of the fills received so far.
    """

    intent: OrderIntent
    accepted: bool = False
    filled_quantity: float = 0.0

    @property
    def client_order_id(self) -> str:
        """The id the order is known by at the venue and in every event about it."""
        return self.intent.intent_id

    @property
    def instrument_id(self) -> str:
        """The instrument the order is for, ``SYMBOL.VENUE``."""
        return self.intent.instrument_id

    @property
    def leaves_quantity(self) -> float:
        """Quantity still to be filled."""
        return max(0.0, self.intent.quantity - self.filled_quantity)


@dataclass(frozen=True, slots=True)
class OcoOrderIds:
    """The client order ids of an OCO pair (see :meth:`Strategy.oco`)."""

    take_profit: str
    stop_loss: str


@dataclass(frozen=True, slots=True)
class BracketOrderIds:
    """The client order ids of a bracket (see :meth:`Strategy.bracket`)."""

    entry: str
    take_profit: str
    stop_loss: str


class StrategyOrderState(StateRecord):
    """An :class:`OpenOrder` as stored."""

    intent: OrderIntent
    accepted: bool
    filled_quantity: float


class StrategyState(ComponentState):
    """All of a :class:`Strategy`'s state.

    Attributes:
        strategy_id: The strategy the state belongs to.
        id_count: Order ids handed out so far.
        positions: Net position of each instrument.
        open_orders: Orders not finished yet.
        last_prices: Latest mark of each instrument.
        stopped: Whether the strategy was stopped.
        error: What stopped it, if an error did.
        kill_switch_tripped: Whether the kill switch was tripped when the state was taken.
        strategy: The subclass's own state, as its ``strategy_state()`` returned it.
        algos: The execution algorithms' parent orders.
        allocation: The latest capital allocation, if any.
        bar_aggregators: The longer bars being built (``strategies[].bars``), if any.
    """

    strategy_id: str
    id_count: int
    positions: dict[str, float]
    open_orders: list[StrategyOrderState]
    last_prices: dict[str, float]
    stopped: bool
    error: str | None
    kill_switch_tripped: bool
    strategy: dict[str, Any]
    algos: ParentOrderBookState | None = None
    allocation: CapitalAllocated | None = None
    bar_aggregators: list[BarAggregatorState] = []


class Strategy:
    """Base class for user strategies.

    Subclass it, declare a ``Params`` model (derived from :class:`StrategyParams`) and override
    the hooks you need. Hooks run only while the strategy is not stopped::

        class Breakout(Strategy):
            class Params(StrategyParams):
                quantity: float = Field(default=0.01, gt=0)

            params: Params

            def on_bar(self, bar: Bar) -> None:
                if self.position(bar.instrument_id) == 0 and bar.close > bar.open:
                    self.buy(bar.instrument_id, self.params.quantity)

    Attributes:
        component_id: ``strategy:<id>``, the address other components send to.
        strategy_id: The configured id; it prefixes every client order id.
        config: The strategy's configuration.
        params: ``config.params`` validated against ``Params``.
        instruments: Every instrument the strategy may trade, keyed by instrument id.
        stopped: True once the strategy stopped (after an error or ``stop()``); a stopped
            strategy ignores every message and submits nothing.
        error: ``"<ExceptionType>: <message>"`` of the error that stopped it, else ``None``.
        kill_switch_tripped: The last kill-switch state Risk announced.
    """

    State: ClassVar[type[StrategyState]] = StrategyState

    Params: ClassVar[type[BaseModel]] = StrategyParams
    params: BaseModel

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        params_model = cls.__dict__.get("Params")
        if params_model is None:
            return
        if not (isinstance(params_model, type) and issubclass(params_model, BaseModel)):
            raise StrategyLoadError(
                f"{cls.__module__}.{cls.__qualname__}.Params must be a pydantic model "
                f"(derive it from tradegraph.strategies.StrategyParams), got {params_model!r}"
            )
        model_config = params_model.model_config
        if model_config.get("extra") != "forbid" or not model_config.get("frozen", False):
            raise StrategyLoadError(
                f"{cls.__module__}.{cls.__qualname__}.Params must be frozen and forbid unknown "
                "keys, so a misspelt parameter is an error instead of being ignored; derive it "
                "from tradegraph.strategies.StrategyParams"
            )

    def __init__(
        self,
        config: StrategyConfig,
        instruments: Mapping[str, Instrument],
        clock: Clock,
        outbox: Outbox,
    ) -> None:
        """Build the strategy; validates ``config.params`` against ``Params``.

        Raises:
            ConfigError: A parameter is invalid (the message names
                ``strategies.<id>.params.<field>``) or an instrument in ``config.instruments``
                is not among ``instruments``.
        """
        self.config = config
        self.strategy_id = config.id
        self.component_id = strategy_component_id(config.id)
        self.clock = clock
        self.outbox = outbox
        missing = [i for i in config.instruments if i not in instruments]
        if missing:
            raise ConfigError(
                f"strategies.{config.id}.instruments: unknown instrument(s) {missing}; "
                f"known: {sorted(instruments)}"
            )
        # A plain dict, not a read-only proxy: components must stay picklable for Ray.
        self.instruments: Mapping[str, Instrument] = {i: instruments[i] for i in config.instruments}
        self.params = self._validate_params(config)
        self.stopped = False
        self.error: str | None = None
        self.kill_switch_tripped = False
        self._ids = IdGenerator(config.id)
        self._positions: dict[str, float] = {}
        self._open_orders: dict[str, OpenOrder] = {}
        self._last_prices: dict[str, float] = {}
        self._parent_orders = ParentOrderBook(_AlgoHost(self), self.instruments)
        self._allocation: CapitalAllocated | None = None
        # Longer bars (``strategies[].bars``), shortest first per instrument; built from bars
        # or from trades, never both.
        self._bar_aggregators: dict[str, tuple[BarAggregator, ...]] = {
            i: tuple(BarAggregator(i, n) for n in config.bar_intervals_ns)
            for i in self.instruments
            if config.bars
        }
        self._bars_from_bars = bool(config.bars) and config.bars_from == "bars"
        self._bars_from_trades = bool(config.bars) and config.bars_from == "trades"

    @classmethod
    def warmup_bars(cls, params: BaseModel) -> int:
        """Bars per instrument the strategy must see before it may trade: the warm-up a
        walk-forward fold (or ``data.trade_start``) replays to it before trading starts.

        The default rule: the largest whole-number parameter whose name ends in ``_period``
        or is ``lookback`` or ``window``; 0 when there is none. Override it when the rule does
        not fit the strategy; the strategy must send no order within that many bars.

        Args:
            params: The strategy's validated ``Params``.
        """
        sizes = [
            value
            for name, value in params.model_dump().items()
            if (name.endswith("_period") or name in ("lookback", "window"))
            and isinstance(value, int)
            and not isinstance(value, bool)
        ]
        return max(sizes, default=0)

    @classmethod
    def _validate_params(cls, config: StrategyConfig) -> BaseModel:
        try:
            return cls.Params.model_validate(config.params)
        except ValidationError as exc:
            problems = []
            for err in exc.errors(include_url=False):
                field = ".".join(str(part) for part in err["loc"])
                where = f"strategies.{config.id}.params" + (f".{field}" if field else "")
                got = f" (got {err['input']!r})" if err["type"] != "missing" and field else ""
                problem = err["msg"].removeprefix("Value error, ")
                problems.append(f"{where}: {problem}{got}")
            raise ConfigError("; ".join(problems)) from None

    # ------------------------------------------------------------------ component interface

    def handle(self, msg: Message) -> None:
        """Single entry point: bookkeeping, then the matching hook, behind the safe wrapper."""
        if self.stopped:
            return
        try:
            if type(msg) is Bar:
                # The mark rule (contracts/marks.py), inline for the hot path: a bar's close.
                self._last_prices[msg.instrument_id] = msg.close
                if self._parent_orders.wants_bars:
                    self._parent_orders.on_bar(msg)
                if self._bars_from_bars:
                    self._on_bar_and_longer(msg)
                else:
                    self.on_bar(msg)
            else:
                self._dispatch(msg)
        except Exception as exc:
            self._fail(exc)

    def start(self) -> None:
        """Called by the engine when the run starts; runs ``on_start`` behind the safe wrapper."""
        if self.stopped:
            return
        try:
            self.on_start()
        except Exception as exc:
            self._fail(exc)

    def stop(self) -> None:
        """Called by the engine when the run ends; runs ``on_stop``, then stops the strategy.

        ``on_stop`` may still submit orders (to flatten, say); nothing is handled afterwards.
        """
        if self.stopped:
            return
        try:
            self.on_stop()
            if self._parent_orders.active:
                self._parent_orders.expire_all("the run ended before the parent filled")
        except Exception as exc:
            self._fail(exc)
        self.stopped = True

    def _dispatch(self, msg: Message) -> None:
        # Message classes are never subclassed, so exact type tests suffice, at a fraction of
        # the cost of isinstance on pydantic models. Most frequent first: ticks, then fills.
        if type(msg) is TradeTick:
            self._last_prices[msg.instrument_id] = msg.price  # the mark rule, inline
            if self._bars_from_trades:
                self._aggregate_trade(msg)
            self.on_trade(msg)
        elif type(msg) is QuoteTick:
            self._last_prices[msg.instrument_id] = msg.mid  # the mark rule, inline
            self.on_quote(msg)
        elif type(msg) is OrderFilled:
            if msg.strategy_id == self.strategy_id:
                self._apply_fill(msg)
                if msg.tag and self._parent_orders.active:
                    self._parent_orders.on_fill(msg)
                self.on_fill(msg)
        elif type(msg) is OrderAccepted:
            if msg.strategy_id == self.strategy_id:
                order = self._open_orders.get(msg.client_order_id)
                if order is not None:
                    self._open_orders[msg.client_order_id] = OpenOrder(
                        order.intent, True, order.filled_quantity
                    )
                self.on_order_accepted(msg)
        elif type(msg) is OrderBookSnapshot:
            mark = mark_price(msg)
            if mark is not None:
                self._last_prices[msg.instrument_id] = mark
            self.on_order_book(msg)
        elif type(msg) is OrderRejected:
            if msg.strategy_id == self.strategy_id:
                self._open_orders.pop(msg.client_order_id, None)
                if self._parent_orders.owns(msg.client_order_id):
                    self._parent_orders.on_child_ended(
                        msg.client_order_id, rejected=True, reason=msg.reason
                    )
                self.on_order_rejected(msg)
        elif type(msg) is OrderCancelled:
            if msg.strategy_id == self.strategy_id:
                self._open_orders.pop(msg.client_order_id, None)
                if self._parent_orders.owns(msg.client_order_id):
                    self._parent_orders.on_child_ended(
                        msg.client_order_id, rejected=False, reason=msg.reason
                    )
                self.on_order_cancelled(msg)
        elif type(msg) is RiskRejected:
            if msg.strategy_id == self.strategy_id:
                self._open_orders.pop(msg.intent_id, None)
                if self._parent_orders.owns(msg.intent_id):
                    self._parent_orders.on_child_ended(
                        msg.intent_id,
                        rejected=True,
                        reason=f"{msg.reason.value}: {msg.detail}",
                        risk_reason=msg.reason,
                    )
                self.on_risk_rejected(msg)
        elif type(msg) is TimerFired:
            if msg.name.startswith(ALGO_TIMER_PREFIX):
                self._parent_orders.on_timer(msg.name)
            else:
                self.on_timer(msg)
        elif type(msg) is KillSwitchChanged:
            self.kill_switch_tripped = msg.tripped
            if msg.tripped and self._parent_orders.active:
                self._parent_orders.stop_all(ParentStatus.CANCELLED, f"kill switch: {msg.reason}")
            self.on_kill_switch(msg)
        elif type(msg) is FeedStatus:
            self.on_feed_status(msg)
        elif type(msg) is FundingPaid:
            if msg.strategy_id == self.strategy_id:
                self.on_funding(msg)
        elif type(msg) is FundingRate:
            self.on_funding_rate(msg)
        elif type(msg) is PositionLiquidated:
            if msg.strategy_id == self.strategy_id:
                self.on_liquidation(msg)
        elif isinstance(msg, CapitalAllocated) and msg.strategy_id == self.strategy_id:
            self._allocation = msg
            self.on_capital_allocated(msg)

    def _on_bar_and_longer(self, bar: Bar) -> None:
        # A longer bar whose last input is missing closes before this bar; one this bar ends
        # closes right after it. Longer bars bypass the mark: their close is a base bar's.
        aggregators = self._bar_aggregators.get(bar.instrument_id, ())
        ts_open = bar.ts_event_ns - bar.interval_ns
        for aggregator in aggregators:
            overdue = aggregator.close_before(ts_open, bar.ts_init_ns)
            if overdue is not None:
                self.on_bar(overdue)
        self.on_bar(bar)
        for aggregator in aggregators:
            closed = aggregator.add_bar(bar)
            if closed is not None:
                self.on_bar(closed)

    def _aggregate_trade(self, tick: TradeTick) -> None:
        for aggregator in self._bar_aggregators.get(tick.instrument_id, ()):
            closed = aggregator.close_before(tick.ts_event_ns, tick.ts_init_ns)
            if closed is not None:
                self.on_bar(closed)
            aggregator.add_trade(tick)

    def _apply_fill(self, fill: OrderFilled) -> None:
        instrument = fill.instrument_id
        before = self._positions.get(instrument, 0.0)
        after = before + fill.signed_qty
        if abs(after) <= _FLAT_TOLERANCE * max(abs(before), fill.last_qty):
            after = 0.0
        self._positions[instrument] = after
        order = self._open_orders.get(fill.client_order_id)
        if order is None:
            return
        if fill.leaves_qty <= _LEAVES_TOLERANCE * order.intent.quantity:
            del self._open_orders[fill.client_order_id]
        else:
            self._open_orders[fill.client_order_id] = OpenOrder(
                order.intent, True, order.filled_quantity + fill.last_qty
            )

    def _fail(self, exc: Exception) -> None:
        location = ""
        frames = traceback.extract_tb(exc.__traceback__)
        if frames:
            last = frames[-1]
            location = f" (in {last.name} at {os.path.basename(last.filename)}:{last.lineno})"
        error_type = type(exc).__name__
        message = f"{exc}{location}"
        self.stopped = True
        self.error = f"{error_type}: {message}"
        now = self.clock.now_ns()
        self.outbox.publish(
            StrategyError(
                strategy_id=self.strategy_id,
                error_type=error_type,
                error=message,
                ts_event_ns=now,
                ts_init_ns=now,
            )
        )

    # ------------------------------------------------------------------ hooks

    def on_start(self) -> None:
        """The run starts, before any market data. Set timers or warm up here.

        Orders may be submitted here; they reach Risk like any other.
        """

    def on_bar(self, bar: Bar) -> None:
        """A bar closed for one of the strategy's instruments (the hot path: keep it lean).

        A bar becomes known at its close (open time plus its interval); a market order sent
        now fills at the next bar's open by default (``venues[].fill_at``), so nothing looks
        ahead. ``last_price`` already returns ``bar.close``.

        With ``strategies[].bars`` it also gets the longer bars asked for, each right after
        the bar that closes it (shortest first); ``bar.interval_ns`` tells them apart.

        Args:
            bar: OHLCV of one interval; ``bar.ts_event_ns`` is its close time.
        """

    def on_trade(self, tick: TradeTick) -> None:
        """A trade printed on one of the strategy's instruments.

        Args:
            tick: Price, size, aggressor side and trade id; ``last_price`` returns its price.
        """

    def on_quote(self, quote: QuoteTick) -> None:
        """The best bid/offer changed on one of the strategy's instruments.

        Args:
            quote: Best bid and ask with their sizes; ``last_price`` returns its mid.
        """

    def on_order_book(self, book: OrderBookSnapshot) -> None:
        """An order-book snapshot arrived for one of the strategy's instruments.

        Args:
            book: Bid and ask levels, best first, to the depth the venue was asked for;
                ``last_price`` returns the mid of the best levels.
        """

    def on_fill(self, fill: OrderFilled) -> None:
        """One of the strategy's orders filled, in part or in full.

        ``position`` and ``open_orders`` already include the fill.

        Args:
            fill: Price, quantity, fee, liquidity side, the client order id and the quantity
                still open (``leaves_qty``).
        """

    def on_funding(self, event: FundingPaid) -> None:
        """A funding payment on one of the strategy's perpetual positions.

        Args:
            event: ``amount`` paid (negative: received), the rate, the mark and the position.
        """

    def on_funding_rate(self, event: FundingRate) -> None:
        """A funding event of one of the strategy's perpetuals, whether it holds it or not
        (the simulated venue announces each event of ``data.funding`` at its time).

        Args:
            event: The perpetual, the ``rate`` (positive: longs pay shorts) and the mark.
        """

    def on_liquidation(self, event: PositionLiquidated) -> None:
        """The venue liquidated one of the strategy's positions (margin accounts).

        ``position`` is already flat: the closing fill (tagged ``liquidation``) reached
        ``on_fill`` first.

        Args:
            event: The position closed, the price, the liquidation fee and why.
        """

    def on_order_accepted(self, event: OrderAccepted) -> None:
        """The venue accepted one of the strategy's orders; it may now rest in the book.

        Args:
            event: The client order id and the venue's order id.
        """

    def on_order_rejected(self, event: OrderRejected) -> None:
        """The venue rejected one of the strategy's orders (it is no longer open).

        Args:
            event: The client order id and the venue's reason.
        """

    def on_order_cancelled(self, event: OrderCancelled) -> None:
        """One of the strategy's orders was cancelled (it is no longer open).

        Args:
            event: The client order id and why it was cancelled (on request, IOC remainder,
                kill switch, ...).
        """

    def on_risk_rejected(self, event: RiskRejected) -> None:
        """Risk refused one of the strategy's intents (it is no longer open).

        Args:
            event: The intent id, a ``RiskReason`` code and a detail that names the limit.
        """

    def on_timer(self, timer: TimerFired) -> None:
        """A timer set with ``set_timer`` came due.

        Args:
            timer: ``timer.name`` is the name it was set with.
        """

    def on_kill_switch(self, event: KillSwitchChanged) -> None:
        """Risk tripped or reset the kill switch (``kill_switch_tripped`` is already updated).

        While it is tripped Risk refuses every new order (in ``reduce_only`` mode, every one
        that would not shrink the strategy's position; in ``flatten`` mode Risk closes the
        strategy's positions itself, with orders whose fills reach ``on_fill`` tagged
        ``kill_switch_flatten``); working algorithmic orders have already been cancelled.

        Args:
            event: Whether it is tripped, in which mode, and why.
        """

    def on_feed_status(self, status: FeedStatus) -> None:
        """Market data for an instrument went stale or fresh again (live sessions).

        Args:
            status: The instrument and whether its feed is stale.
        """

    def on_stop(self) -> None:
        """The run ends. Orders may still be submitted here (to flatten, say).

        Working algorithmic orders expire after it returns.
        """

    def on_capital_allocated(self, event: CapitalAllocated) -> None:
        """The allocator set this strategy's capital (``allocated_capital`` is updated).

        Size new orders from ``sizing_capital``; resize positions here if the strategy wants
        to follow a rebalance at once (with ordinary orders, through Risk).

        Args:
            event: The strategy's capital and its sizing capital.
        """

    def on_execution_report(self, report: ExecutionReport) -> None:
        """A parent order sent with ``submit_algo_order`` ended (filled, cancelled, ...).

        Args:
            report: The parent id, its final status, filled quantity, average price,
                shortfall against the arrival price and slippage against the interval VWAP.
        """

    # ------------------------------------------------------------------ order API

    def submit_order(
        self,
        instrument_id: str,
        side: OrderSide,
        quantity: float,
        order_type: OrderType = OrderType.MARKET,
        limit_price: float | None = None,
        time_in_force: TimeInForce = TimeInForce.GTC,
        post_only: bool = False,
        reduce_only: bool = False,
        tag: str = "",
        *,
        trigger_price: float | None = None,
        trailing_offset: float | None = None,
        trailing_offset_type: TrailingOffsetType | str = TrailingOffsetType.PRICE,
        expire_at_ns: int | None = None,
        oco_group: str = "",
        parent_id: str = "",
    ) -> str:
        """Send an order intent to Risk and track it as open.

        Conditional orders (stops, take-profits, trailing stops) and contingent ones (OCO
        groups, children of another order) are held by Risk until they trigger; the helpers
        ``stop_market``, ``stop_limit``, ``take_profit``, ``trailing_stop``, ``oco`` and
        ``bracket`` build them. See :mod:`tradegraph.execution.emulator` for the rules.

        Args:
            instrument_id: One of the strategy's instruments.
            side: Buy or sell.
            quantity: Base-currency quantity, > 0; Risk rounds it down to the lot size.
            order_type: ``market``, ``limit``, ``stop_market``, ``stop_limit``,
                ``take_profit``, ``take_profit_limit`` or ``trailing_stop``.
            limit_price: Required for the limit types, forbidden for the others.
            time_in_force: GTC, IOC, FOK, or GTD (with ``expire_at_ns``).
            post_only: Limit types only: refuse to take liquidity.
            reduce_only: Only ever reduce the position.
            tag: Free text carried to the fills.
            trigger_price: The price a stop or take-profit triggers at.
            trailing_offset: A trailing stop's distance from the best price.
            trailing_offset_type: ``price`` or ``bps``.
            expire_at_ns: With GTD: when the order expires, on the strategy's clock.
            oco_group: Orders sharing a group cancel each other when one triggers.
            parent_id: Hold this order until the order ``parent_id`` fills (send it first).

        Returns:
            The client order id, ``"<strategy_id>-<n:06d>"``; it is deterministic.

        Raises:
            OrderPathError: The strategy is stopped.
            ValueError: The instrument is not the strategy's or the order is malformed.
        """
        intent = self._intent(
            1,
            instrument_id,
            side,
            quantity,
            order_type=order_type,
            limit_price=limit_price,
            time_in_force=time_in_force,
            post_only=post_only,
            reduce_only=reduce_only,
            tag=tag,
            trigger_price=trigger_price,
            trailing_offset=trailing_offset,
            trailing_offset_type=(
                trailing_offset_type
                if type(trailing_offset_type) is TrailingOffsetType
                else TrailingOffsetType(trailing_offset_type)
            ),
            expire_at_ns=expire_at_ns,
            oco_group=oco_group,
            parent_id=parent_id,
        )
        self._send(intent)
        return intent.intent_id

    def _intent(
        self,
        ahead: int,
        instrument_id: str,
        side: OrderSide,
        quantity: float,
        **fields: Any,
    ) -> OrderIntent:
        """A validated intent numbered ``ahead`` ids after the last one handed out.

        Nothing is counted yet: :meth:`_send` takes the number, so a malformed order (or a
        malformed leg of a bracket) leaves no gap.
        """
        if self.stopped:
            raise OrderPathError(
                f"strategy {self.strategy_id!r} is stopped and cannot submit orders"
                + (f" (stopped by {self.error})" if self.error else "")
            )
        if instrument_id not in self.instruments:
            raise ValueError(
                f"strategy {self.strategy_id!r} cannot trade {instrument_id!r}: not among its "
                f"instruments {list(self.instruments)}"
            )
        now = self.clock.now_ns()
        return OrderIntent(
            intent_id=f"{self.strategy_id}-{self._ids.count + ahead:06d}",
            strategy_id=self.strategy_id,
            instrument_id=instrument_id,
            side=side,
            quantity=quantity,
            ts_event_ns=now,
            ts_init_ns=now,
            **fields,
        )

    def _send(self, intent: OrderIntent) -> None:
        """Track ``intent`` as open and send it to Risk (its id is taken from the counter)."""
        self._ids.count = max(self._ids.count, int(intent.intent_id.rsplit("-", 1)[1]))
        self._open_orders[intent.intent_id] = OpenOrder(intent)
        self.outbox.publish(intent)

    def stop_market(
        self,
        instrument_id: str,
        side: OrderSide,
        quantity: float,
        trigger_price: float,
        *,
        reduce_only: bool = False,
        time_in_force: TimeInForce = TimeInForce.GTC,
        expire_at_ns: int | None = None,
        tag: str = "",
    ) -> str:
        """A stop that becomes a market order when the price reaches ``trigger_price``
        (a buy when it rises to it, a sell when it falls to it).

        Returns:
            The client order id.
        """
        return self.submit_order(
            instrument_id,
            side,
            quantity,
            OrderType.STOP_MARKET,
            time_in_force=time_in_force,
            reduce_only=reduce_only,
            tag=tag,
            trigger_price=trigger_price,
            expire_at_ns=expire_at_ns,
        )

    def stop_limit(
        self,
        instrument_id: str,
        side: OrderSide,
        quantity: float,
        trigger_price: float,
        limit_price: float,
        *,
        post_only: bool = False,
        reduce_only: bool = False,
        time_in_force: TimeInForce = TimeInForce.GTC,
        expire_at_ns: int | None = None,
        tag: str = "",
    ) -> str:
        """A stop that becomes a limit order at ``limit_price`` when the price reaches
        ``trigger_price``.

        Returns:
            The client order id.
        """
        return self.submit_order(
            instrument_id,
            side,
            quantity,
            OrderType.STOP_LIMIT,
            limit_price,
            time_in_force,
            post_only,
            reduce_only,
            tag,
            trigger_price=trigger_price,
            expire_at_ns=expire_at_ns,
        )

    def take_profit(
        self,
        instrument_id: str,
        side: OrderSide,
        quantity: float,
        trigger_price: float,
        *,
        limit_price: float | None = None,
        post_only: bool = False,
        reduce_only: bool = False,
        time_in_force: TimeInForce = TimeInForce.GTC,
        expire_at_ns: int | None = None,
        tag: str = "",
    ) -> str:
        """A take-profit: when the price reaches ``trigger_price`` in the order's favour (a
        sell when it rises to it, a buy when it falls to it) it becomes a market order, or a
        limit order at ``limit_price`` if one is given.

        Returns:
            The client order id.
        """
        return self.submit_order(
            instrument_id,
            side,
            quantity,
            OrderType.TAKE_PROFIT if limit_price is None else OrderType.TAKE_PROFIT_LIMIT,
            limit_price,
            time_in_force,
            post_only,
            reduce_only,
            tag,
            trigger_price=trigger_price,
            expire_at_ns=expire_at_ns,
        )

    def trailing_stop(
        self,
        instrument_id: str,
        side: OrderSide,
        quantity: float,
        offset: float,
        *,
        offset_type: TrailingOffsetType | str = TrailingOffsetType.PRICE,
        trigger_price: float | None = None,
        reduce_only: bool = False,
        time_in_force: TimeInForce = TimeInForce.GTC,
        expire_at_ns: int | None = None,
        tag: str = "",
    ) -> str:
        """A stop that follows the best price since it was placed at ``offset`` (price units,
        or basis points with ``offset_type="bps"``) and becomes a market order when the price
        comes back to it; ``trigger_price`` is an optional initial level.

        Returns:
            The client order id.
        """
        return self.submit_order(
            instrument_id,
            side,
            quantity,
            OrderType.TRAILING_STOP,
            time_in_force=time_in_force,
            reduce_only=reduce_only,
            tag=tag,
            trigger_price=trigger_price,
            trailing_offset=offset,
            trailing_offset_type=offset_type,
            expire_at_ns=expire_at_ns,
        )

    def oco(
        self,
        instrument_id: str,
        side: OrderSide,
        quantity: float,
        *,
        take_profit_price: float,
        stop_price: float,
        take_profit_limit_price: float | None = None,
        stop_limit_price: float | None = None,
        reduce_only: bool = True,
        time_in_force: TimeInForce = TimeInForce.GTC,
        expire_at_ns: int | None = None,
        tag: str = "",
    ) -> OcoOrderIds:
        """A take-profit and a stop-loss that cancel each other: when one triggers, the other
        is cancelled. Made to close a position (``side`` is the closing side; reduce-only by
        default). When one bar reaches both, the stop is taken.

        Args:
            instrument_id: One of the strategy's instruments.
            side: The side of both orders (sell to close a long).
            quantity: Quantity of each order.
            take_profit_price: Trigger of the take-profit.
            stop_price: Trigger of the stop-loss.
            take_profit_limit_price: Make the take-profit a limit order at this price.
            stop_limit_price: Make the stop-loss a stop-limit at this price.
            reduce_only: Both orders only reduce the position.
            time_in_force: Of both orders.
            expire_at_ns: With GTD, when both expire.
            tag: Free text carried to the fills.

        Returns:
            The ids of the take-profit and the stop-loss.
        """
        legs = self._exit_legs(
            0,
            "",
            instrument_id,
            side,
            quantity,
            take_profit_price,
            stop_price,
            take_profit_limit_price,
            stop_limit_price,
            reduce_only=reduce_only,
            time_in_force=time_in_force,
            expire_at_ns=expire_at_ns,
            tag=tag,
        )
        for leg in legs:
            self._send(leg)
        return OcoOrderIds(take_profit=legs[0].intent_id, stop_loss=legs[1].intent_id)

    def bracket(
        self,
        instrument_id: str,
        side: OrderSide,
        quantity: float,
        *,
        take_profit_price: float,
        stop_price: float,
        entry_price: float | None = None,
        take_profit_limit_price: float | None = None,
        stop_limit_price: float | None = None,
        time_in_force: TimeInForce = TimeInForce.GTC,
        expire_at_ns: int | None = None,
        tag: str = "",
    ) -> BracketOrderIds:
        """An entry with a take-profit and a stop-loss that work once the entry has filled
        and cancel each other (an OCO pair of reduce-only orders on the other side).

        The exits are sent first, then the entry; they work for the quantity the entry
        filled, and are cancelled if it ends unfilled.

        Args:
            instrument_id: One of the strategy's instruments.
            side: The entry's side.
            quantity: The entry's quantity.
            take_profit_price: Trigger of the take-profit.
            stop_price: Trigger of the stop-loss.
            entry_price: A limit entry at this price; ``None``: a market entry.
            take_profit_limit_price: Make the take-profit a limit order at this price.
            stop_limit_price: Make the stop-loss a stop-limit at this price.
            time_in_force: The entry's time in force (GTD: with ``expire_at_ns``).
            expire_at_ns: With GTD, when the entry expires.
            tag: Free text carried to the fills of all three.

        Returns:
            The ids of the entry, the take-profit and the stop-loss.

        Raises:
            ValueError: The prices are on the wrong side of each other (a long's take-profit
                must be above its stop, a short's below), or an order is malformed.
        """
        is_buy = side is OrderSide.BUY
        if (take_profit_price <= stop_price) if is_buy else (take_profit_price >= stop_price):
            raise ValueError(
                f"bracket take_profit_price {take_profit_price:g} must be "
                f"{'above' if is_buy else 'below'} stop_price {stop_price:g} for a "
                f"{side.value} entry"
            )
        entry = self._intent(
            1,
            instrument_id,
            side,
            quantity,
            order_type=OrderType.MARKET if entry_price is None else OrderType.LIMIT,
            limit_price=entry_price,
            time_in_force=time_in_force,
            expire_at_ns=expire_at_ns,
            tag=tag,
        )
        legs = self._exit_legs(
            1,
            entry.intent_id,
            instrument_id,
            side.opposite(),
            quantity,
            take_profit_price,
            stop_price,
            take_profit_limit_price,
            stop_limit_price,
            reduce_only=True,
            time_in_force=TimeInForce.GTC,
            expire_at_ns=None,
            tag=tag,
        )
        for leg in legs:
            self._send(leg)
        self._send(entry)
        return BracketOrderIds(
            entry=entry.intent_id, take_profit=legs[0].intent_id, stop_loss=legs[1].intent_id
        )

    def _exit_legs(
        self,
        ahead: int,
        parent_id: str,
        instrument_id: str,
        side: OrderSide,
        quantity: float,
        take_profit_price: float,
        stop_price: float,
        take_profit_limit_price: float | None,
        stop_limit_price: float | None,
        **common: Any,
    ) -> tuple[OrderIntent, OrderIntent]:
        """A take-profit and a stop-loss in one OCO group (named after the first of them, or
        after the parent), numbered after ``ahead`` ids."""
        group = parent_id or f"{self.strategy_id}-{self._ids.count + ahead + 1:06d}"
        take_profit = self._intent(
            ahead + 1,
            instrument_id,
            side,
            quantity,
            order_type=(
                OrderType.TAKE_PROFIT
                if take_profit_limit_price is None
                else OrderType.TAKE_PROFIT_LIMIT
            ),
            limit_price=take_profit_limit_price,
            trigger_price=take_profit_price,
            oco_group=group,
            parent_id=parent_id,
            **common,
        )
        stop_loss = self._intent(
            ahead + 2,
            instrument_id,
            side,
            quantity,
            order_type=OrderType.STOP_MARKET if stop_limit_price is None else OrderType.STOP_LIMIT,
            limit_price=stop_limit_price,
            trigger_price=stop_price,
            oco_group=group,
            parent_id=parent_id,
            **common,
        )
        return take_profit, stop_loss

    def _submit_child(
        self,
        parent_id: str,
        instrument_id: str,
        side: OrderSide,
        quantity: float,
        limit_price: float | None,
    ) -> str:
        """``submit_order`` for a child of an execution algorithm, tagged with its parent.

        The parent order book sends whole lots (> 0) of one of the strategy's instruments, at
        a limit price it checked when the parent arrived, so the intent is valid by
        construction and is built without per-field validation; it is the same intent
        ``submit_order`` would build.
        """
        if self.stopped:
            raise OrderPathError(
                f"strategy {self.strategy_id!r} is stopped and cannot submit orders"
                + (f" (stopped by {self.error})" if self.error else "")
            )
        now = self.clock.now_ns()
        client_order_id = self._ids.next()
        intent = OrderIntent.trusted(
            intent_id=client_order_id,
            strategy_id=self.strategy_id,
            instrument_id=instrument_id,
            side=side,
            quantity=quantity,
            order_type=OrderType.MARKET if limit_price is None else OrderType.LIMIT,
            limit_price=limit_price,
            time_in_force=TimeInForce.GTC,
            post_only=False,
            reduce_only=False,
            tag=parent_id,
            trigger_price=None,
            trailing_offset=None,
            trailing_offset_type=TrailingOffsetType.PRICE,
            expire_at_ns=None,
            oco_group="",
            parent_id="",
            ts_event_ns=now,
            ts_init_ns=now,
        )
        self._open_orders[client_order_id] = OpenOrder(intent)
        self.outbox.publish(intent)
        return client_order_id

    def buy(
        self,
        instrument_id: str,
        quantity: float,
        order_type: OrderType = OrderType.MARKET,
        limit_price: float | None = None,
        time_in_force: TimeInForce = TimeInForce.GTC,
        post_only: bool = False,
        reduce_only: bool = False,
        tag: str = "",
        *,
        expire_at_ns: int | None = None,
    ) -> str:
        """``submit_order`` with ``side=BUY``; the arguments are ``submit_order``'s.

        Returns:
            The client order id.
        """
        return self.submit_order(
            instrument_id,
            OrderSide.BUY,
            quantity,
            order_type,
            limit_price,
            time_in_force,
            post_only,
            reduce_only,
            tag,
            expire_at_ns=expire_at_ns,
        )

    def sell(
        self,
        instrument_id: str,
        quantity: float,
        order_type: OrderType = OrderType.MARKET,
        limit_price: float | None = None,
        time_in_force: TimeInForce = TimeInForce.GTC,
        post_only: bool = False,
        reduce_only: bool = False,
        tag: str = "",
        *,
        expire_at_ns: int | None = None,
    ) -> str:
        """``submit_order`` with ``side=SELL``; the arguments are ``submit_order``'s.

        Returns:
            The client order id.
        """
        return self.submit_order(
            instrument_id,
            OrderSide.SELL,
            quantity,
            order_type,
            limit_price,
            time_in_force,
            post_only,
            reduce_only,
            tag,
            expire_at_ns=expire_at_ns,
        )

    def submit_algo_order(
        self,
        instrument_id: str,
        side: OrderSide,
        quantity: float,
        algo: AlgoName | str = "auto",
        *,
        limit_price: float | None = None,
        urgency: Urgency | str = Urgency.MEDIUM,
        avg_bar_volume: float | None = None,
        **params: Any,
    ) -> str:
        """Work a parent order with an execution algorithm; every child goes through Risk.

        Children are ordinary intents (market, or limit at ``limit_price``) tagged with the
        returned parent id; they show up in ``open_orders``, fill into ``position`` and reach
        ``on_fill`` like any other order. When the parent ends, ``on_execution_report`` gets
        its :class:`~tradegraph.contracts.ExecutionReport` (it is also published to the
        driver). See :mod:`tradegraph.execution.algorithms` for the algorithms.

        Args:
            instrument_id: One of the strategy's instruments.
            side: Buy or sell.
            quantity: Parent quantity; rounded down to the lot.
            algo: ``twap``, ``vwap``, ``iceberg``, ``pov``, or ``auto`` to let
                :func:`~tradegraph.execution.algorithms.choose_algorithm` pick from
                ``avg_bar_volume`` and ``urgency``.
            limit_price: Price for limit children (required by an iceberg).
            urgency: ``low``, ``medium`` or ``high``; used by ``auto`` only.
            avg_bar_volume: Recent average bar volume; required by ``auto``.
            **params: The algorithm's parameters (``TwapParams``, ``VwapParams``, ...).

        Returns:
            The parent id, ``"<strategy_id>-P<n:06d>"``; it is deterministic.

        Raises:
            OrderPathError: The strategy is stopped.
            ConfigError: Unknown algorithm or invalid parameters.
            ValueError: Unknown instrument, quantity below one lot, no price yet, or ``auto``
                without ``avg_bar_volume``.
        """
        if self.stopped:
            raise OrderPathError(
                f"strategy {self.strategy_id!r} is stopped and cannot submit orders"
            )
        if instrument_id not in self.instruments:
            raise ValueError(
                f"strategy {self.strategy_id!r} cannot trade {instrument_id!r}: not among its "
                f"instruments {list(self.instruments)}"
            )
        if str(algo) == "auto":
            if avg_bar_volume is None:
                raise ValueError("algo='auto' needs avg_bar_volume to size the order against")
            choice = choose_algorithm(
                quantity, avg_bar_volume, urgency, limit_price=limit_price, **params
            )
            algo, params = choice.algo, choice.params
        return self._parent_orders.submit(
            instrument_id, side, quantity, algo, params, limit_price=limit_price
        )

    def learn_volume_profile(self, instrument_id: str, buckets: int = 24) -> None:
        """Learn ``instrument_id``'s intraday volume profile from every bar from now on.

        For parents sent with ``algo="vwap", profile="online"``; call it in ``on_start`` to
        learn from the first bar of the run.

        Args:
            instrument_id: One of the strategy's instruments.
            buckets: Slices of the UTC day the mean bar volume is kept for.

        Raises:
            ValueError: The instrument is not the strategy's, or its profile is already
                learned with another number of buckets.
        """
        if instrument_id not in self.instruments:
            raise ValueError(
                f"strategy {self.strategy_id!r} does not trade {instrument_id!r}: not among its "
                f"instruments {list(self.instruments)}"
            )
        self._parent_orders.learn_volume_profile(instrument_id, buckets)

    def cancel_algo_order(self, parent_id: str) -> bool:
        """Stop a parent order and cancel its open children.

        Args:
            parent_id: The id ``submit_algo_order`` returned.

        Returns:
            True if the parent was working; False if it is unknown or already ending.
        """
        return self._parent_orders.cancel(parent_id)

    @property
    def parent_orders(self) -> ParentOrderBook:
        """The strategy's parent orders and the reports of those that ended."""
        return self._parent_orders

    def cancel_order(self, client_order_id: str) -> bool:
        """Ask Risk to cancel an open order.

        The order stays in ``open_orders`` until the venue confirms (``OrderCancelled``) or it
        fills.

        Args:
            client_order_id: The id ``submit_order`` returned.

        Returns:
            True if a ``CancelIntent`` was sent; False if the order is not open (nothing to do).

        Raises:
            OrderPathError: The strategy is stopped.
        """
        if self.stopped:
            raise OrderPathError(
                f"strategy {self.strategy_id!r} is stopped and cannot cancel orders"
            )
        if client_order_id not in self._open_orders:
            return False
        now = self.clock.now_ns()
        self.outbox.publish(
            CancelIntent(
                strategy_id=self.strategy_id,
                client_order_id=client_order_id,
                ts_event_ns=now,
                ts_init_ns=now,
            )
        )
        return True

    # ------------------------------------------------------------------ state queries

    def continue_ids_after(self, number: int) -> None:
        """Number the next order above ``number``.

        A new session on an account whose order journal holds an earlier session's orders
        continues after them, so a client order id is never used twice.

        Args:
            number: The highest order number of this strategy found in the journal.
        """
        self._ids.count = max(self._ids.count, number)

    def position(self, instrument_id: str) -> float:
        """The strategy's own net base quantity in ``instrument_id`` (negative when short).

        Args:
            instrument_id: An instrument id, ``SYMBOL.VENUE``.

        Returns:
            0.0 for an instrument never traded.
        """
        return self._positions.get(instrument_id, 0.0)

    @property
    def positions(self) -> Mapping[str, float]:
        """Net quantity per instrument the strategy has traded."""
        return MappingProxyType(self._positions)

    @property
    def open_orders(self) -> Mapping[str, OpenOrder]:
        """Orders sent and not yet finished (filled, cancelled or rejected), by client order id."""
        return MappingProxyType(self._open_orders)

    def has_open_orders(self, instrument_id: str | None = None) -> bool:
        """Whether any order is open, for ``instrument_id`` or, if ``None``, for any instrument.

        Args:
            instrument_id: An instrument id, or ``None`` for all of them.
        """
        if instrument_id is None:
            return bool(self._open_orders)
        return any(o.intent.instrument_id == instrument_id for o in self._open_orders.values())

    @property
    def allocated_capital(self) -> float | None:
        """Capital the allocator gave this strategy; ``None`` without capital allocation."""
        return None if self._allocation is None else self._allocation.capital

    @property
    def sizing_capital(self) -> float | None:
        """``allocated_capital * risk_multiplier``: what orders should be sized from."""
        return None if self._allocation is None else self._allocation.sizing_capital

    def last_price(self, instrument_id: str) -> float | None:
        """The latest mark of ``instrument_id``: the last bar close, trade price, quote mid or
        book mid seen for it (the rule of :mod:`tradegraph.contracts.marks`).

        Args:
            instrument_id: One of the strategy's instruments.

        Returns:
            The price, or ``None`` before the first data for it.
        """
        return self._last_prices.get(instrument_id)

    def now_ns(self) -> int:
        """Current time, nanoseconds since the epoch, from the strategy's clock."""
        return self.clock.now_ns()

    def set_timer(self, name: str, at_ns: int) -> None:
        """Get ``on_timer`` with a ``TimerFired`` named ``name`` at ``at_ns``.

        Setting a timer of a name already pending replaces it. Names starting with the
        execution algorithms' prefix are reserved.

        Args:
            name: The timer's name, handed back in ``on_timer``.
            at_ns: When it fires, nanoseconds since the epoch on the strategy's clock.
        """
        self.clock.set_timer(name, at_ns)

    def cancel_timer(self, name: str) -> None:
        """Drop the timer ``name`` if it is pending.

        Args:
            name: The name it was set with.
        """
        self.clock.cancel_timer(name)

    # ------------------------------------------------------------------ snapshot / restore

    def strategy_state(self) -> dict[str, Any]:
        """Subclass state (indicators, flags) as JSON-able plain data.

        Override it together with ``restore_strategy_state``; the base returns ``{}``.

        Returns:
            Plain data (dicts, lists, numbers, strings) that ``restore_strategy_state`` reads.
        """
        return {}

    def restore_strategy_state(self, state: dict[str, Any]) -> None:
        """Load what ``strategy_state`` returned. Override together with ``strategy_state``.

        Args:
            state: What ``strategy_state`` returned when the snapshot was taken.
        """

    def snapshot(self) -> StrategyState:
        """The whole strategy state.

        Returns:
            Positions, open orders, last prices, the id counter, algorithmic orders,
            allocation and ``strategy_state()``.
        """
        return StrategyState(
            strategy_id=self.strategy_id,
            id_count=self._ids.count,
            positions=dict(self._positions),
            open_orders=[
                StrategyOrderState(
                    intent=o.intent, accepted=o.accepted, filled_quantity=o.filled_quantity
                )
                for o in self._open_orders.values()
            ],
            last_prices=dict(self._last_prices),
            stopped=self.stopped,
            error=self.error,
            kill_switch_tripped=self.kill_switch_tripped,
            strategy=self.strategy_state(),
            algos=self._parent_orders.snapshot(),
            allocation=self._allocation,
            bar_aggregators=[
                a.snapshot() for aggregators in self._bar_aggregators.values() for a in aggregators
            ],
        )

    def restore(self, state: StrategyState) -> None:
        """Load a ``snapshot()``; the strategy then behaves as the one that took it.

        Args:
            state: What ``snapshot`` returned (``Strategy.State.model_validate`` of its
                ``model_dump(mode="json")`` when it was stored).

        Raises:
            ValueError: The snapshot belongs to another strategy id.
        """
        if state.strategy_id != self.strategy_id:
            raise ValueError(
                f"snapshot of strategy {state.strategy_id!r} cannot be restored into "
                f"strategy {self.strategy_id!r}"
            )
        self._ids.count = state.id_count
        self._positions = dict(state.positions)
        self._open_orders = {
            o.intent.intent_id: OpenOrder(o.intent, o.accepted, o.filled_quantity)
            for o in state.open_orders
        }
        self._last_prices = dict(state.last_prices)
        self.stopped = state.stopped
        self.error = state.error
        self.kill_switch_tripped = state.kill_switch_tripped
        if state.algos is not None:
            self._parent_orders.restore(state.algos)
        self._allocation = state.allocation
        for stored in state.bar_aggregators:
            # An interval no longer configured is dropped; a new one starts empty.
            for aggregator in self._bar_aggregators.get(stored.instrument_id, ()):
                if aggregator.interval_ns == stored.interval_ns:
                    aggregator.restore(stored)
        self.restore_strategy_state(dict(state.strategy))


class _AlgoHost:
    """What the execution algorithms of one strategy may do: the strategy's own order API."""

    __slots__ = ("_strategy", "strategy_id")

    def __init__(self, strategy: Strategy) -> None:
        self._strategy = strategy
        self.strategy_id = strategy.strategy_id

    def now_ns(self) -> int:
        return self._strategy.clock.now_ns()

    def last_price(self, instrument_id: str) -> float | None:
        return self._strategy.last_price(instrument_id)

    def set_timer(self, name: str, at_ns: int) -> None:
        self._strategy.clock.set_timer(name, at_ns)

    def cancel_timer(self, name: str) -> None:
        self._strategy.clock.cancel_timer(name)

    def submit_child(
        self,
        parent_id: str,
        instrument_id: str,
        side: OrderSide,
        quantity: float,
        limit_price: float | None,
    ) -> str:
        strategy = self._strategy
        client_order_id = strategy._submit_child(
            parent_id, instrument_id, side, quantity, limit_price
        )
        strategy.parent_orders.register_child(client_order_id, parent_id)
        return client_order_id

    def cancel_child(self, client_order_id: str) -> bool:
        return self._strategy.cancel_order(client_order_id)

    def report_execution(self, report: ExecutionReport) -> None:
        self._strategy.outbox.publish(report)
        self._strategy.on_execution_report(report)
