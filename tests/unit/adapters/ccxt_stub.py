"""A scripted stand-in for a ccxt async exchange client, for unit tests of the brokers.

It keeps orders and trades the way a spot venue would (market orders fill at ``price`` at
once, limit orders rest until :meth:`StubExchange.fill` or a cancel) and returns ccxt-shaped
structures. Faults are scripted per method: each call pops the next entry of
``faults[method]``; an exception raises before the venue acts, ``("after", exc)`` acts and
then raises (an answer lost on the way back).
"""

from __future__ import annotations

import asyncio
import math
from collections import defaultdict
from typing import Any

import ccxt


class StubExchange:
    def __init__(self, price: float = 100.0) -> None:
        self.id = "binance"
        self.has = {"watchOrders": True, "watchMyTrades": True, "fetchTime": True}
        self.markets: dict[str, Any] = {
            "BTC/USDT": {
                "id": "BTCUSDT",
                "symbol": "BTC/USDT",
                "limits": {"amount": {"min": 0.001}, "cost": {"min": 5.0}},
            }
        }
        self.price = price
        self.orders: dict[str, dict[str, Any]] = {}
        self.trades: list[dict[str, Any]] = []
        self.balances: dict[str, float] = {"BTC": 1.0, "USDT": 100_000.0}
        self.faults: dict[str, list[Any]] = defaultdict(list)
        self.calls: dict[str, int] = defaultdict(int)
        self.create_calls: list[str] = []
        self.last_response_headers: dict[str, str] | None = None
        self.time_syncs = 0
        self.closed = False
        self.order_updates: asyncio.Queue[list[dict[str, Any]]] = asyncio.Queue()
        self.trade_updates: asyncio.Queue[list[dict[str, Any]]] = asyncio.Queue()
        self._order_seq = 0
        self._trade_seq = 0
        self.now_ms = 1_700_000_000_000

    # ------------------------------------------------------------------ helpers for tests

    def order_by_client_id(self, client_id: str) -> dict[str, Any]:
        return self.orders[client_id]

    def fill(self, client_id: str, amount: float, price: float | None = None) -> dict[str, Any]:
        """The venue fills part of a resting order (as while the broker is away)."""
        order = self.orders[client_id]
        return self._trade(order, amount, self.price if price is None else price, "maker")

    def _trade(
        self, order: dict[str, Any], amount: float, price: float, taker_or_maker: str
    ) -> dict[str, Any]:
        self._trade_seq += 1
        self.now_ms += 1
        trade = {
            "id": str(self._trade_seq),
            "order": order["id"],
            "symbol": order["symbol"],
            "side": order["side"],
            "amount": amount,
            "price": price,
            "timestamp": self.now_ms,
            "takerOrMaker": taker_or_maker,
            "fee": {"cost": amount * price * 0.001, "currency": "USDT"},
        }
        self.trades.append(trade)
        order["filled"] = round(order["filled"] + amount, 12)
        order["remaining"] = round(order["amount"] - order["filled"], 12)
        if order["remaining"] <= 1e-12:
            order["status"] = "closed"
        sign = 1.0 if order["side"] == "buy" else -1.0
        self.balances["BTC"] += sign * amount
        self.balances["USDT"] -= sign * amount * price + amount * price * 0.001
        return trade

    def _view(self, order: dict[str, Any], with_trades: bool = False) -> dict[str, Any]:
        view = {k: v for k, v in order.items() if k != "_trades"}
        view["trades"] = (
            [dict(t) for t in self.trades if t["order"] == order["id"]] if with_trades else []
        )
        return view

    async def _fault(self, method: str) -> Any:
        self.calls[method] += 1
        queue = self.faults.get(method)
        if not queue:
            return None
        fault = queue.pop(0)
        if isinstance(fault, tuple):
            return fault[1]
        if isinstance(fault, BaseException):
            raise fault
        return None

    # ------------------------------------------------------------------ ccxt surface

    async def load_markets(self) -> dict[str, Any]:
        await self._fault("load_markets")
        return self.markets

    async def load_time_difference(self) -> int:
        self.time_syncs += 1
        return 0

    def amount_to_precision(self, symbol: str, amount: float) -> str:
        value = math.floor(amount * 1000 + 1e-9) / 1000
        if value <= 0:
            raise ccxt.InvalidOrder(f"binance amount of {symbol} must be greater than minimum")
        return f"{value:.3f}"

    def price_to_precision(self, symbol: str, price: float) -> str:
        return f"{round(price, 2):.2f}"

    async def create_order(
        self,
        symbol: str,
        type: str,
        side: str,
        amount: float,
        price: float | None = None,
        params: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        params = params or {}
        client_id = params["clientOrderId"]
        self.create_calls.append(client_id)
        lost_answer = await self._fault("create_order")
        existing = self.orders.get(client_id)
        if existing is not None and existing["status"] == "open":
            raise ccxt.InvalidOrder('binance {"code":-2010,"msg":"Duplicate order sent."}')
        self._order_seq += 1
        order: dict[str, Any] = {
            "id": str(1000 + self._order_seq),
            "clientOrderId": client_id,
            "symbol": symbol,
            "type": type,
            "side": side,
            "amount": amount,
            "price": price,
            "filled": 0.0,
            "remaining": amount,
            "status": "open",
            "timeInForce": params.get("timeInForce", "GTC"),
        }
        self.orders[client_id] = order
        if type == "market":
            self._trade(order, amount, self.price, "taker")
        elif order["timeInForce"] == "IOC":
            order["status"] = "expired"
        if lost_answer is not None:
            raise lost_answer
        return self._view(order, with_trades=True)

    async def fetch_order(
        self, id: str | None, symbol: str | None = None, params: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        await self._fault("fetch_order")
        client_id = (params or {}).get("clientOrderId")
        order = self.orders.get(str(client_id))
        if order is None:
            raise ccxt.OrderNotFound('binance {"code":-2013,"msg":"Order does not exist."}')
        return self._view(order)

    async def cancel_order(
        self, id: str | None, symbol: str | None = None, params: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        await self._fault("cancel_order")
        client_id = (params or {}).get("clientOrderId")
        order = self.orders.get(str(client_id))
        if order is None or order["status"] != "open":
            raise ccxt.OrderNotFound('binance {"code":-2011,"msg":"Unknown order sent."}')
        order["status"] = "canceled"
        return self._view(order)

    async def fetch_open_orders(self, symbol: str | None = None) -> list[dict[str, Any]]:
        await self._fault("fetch_open_orders")
        return [self._view(o) for o in self.orders.values() if o["status"] == "open"]

    async def fetch_my_trades(
        self, symbol: str | None = None, since: int | None = None, limit: int | None = None
    ) -> list[dict[str, Any]]:
        await self._fault("fetch_my_trades")
        out = [dict(t) for t in self.trades if since is None or t["timestamp"] >= since]
        return out[:limit] if limit else out

    async def fetch_balance(self) -> dict[str, Any]:
        await self._fault("fetch_balance")
        return {"total": dict(self.balances)}

    async def watch_orders(self) -> list[dict[str, Any]]:
        return await self.order_updates.get()

    async def watch_my_trades(self) -> list[dict[str, Any]]:
        return await self.trade_updates.get()

    async def close(self) -> None:
        self.closed = True
