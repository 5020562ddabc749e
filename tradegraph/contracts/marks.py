"""The one mark-price rule: what a market-data message says an instrument is worth now.

Risk, Portfolio and the Strategy base all value an instrument at its latest mark, taken from
the latest market-data message about it:

* a bar: its close;
* a trade tick: its price;
* a quote tick: the mid of best bid and best ask;
* an order book snapshot: the mid of the best levels, when both sides have one (a one-sided
  book leaves the mark where it was).

The last message wins, whatever its kind, so a live session that receives books and trades
values positions at whichever came last, the same way in every component. A bar-only backtest
marks at bar closes only.
"""

from __future__ import annotations

from tradegraph.contracts.base import Message
from tradegraph.contracts.market import Bar, OrderBookSnapshot, QuoteTick, TradeTick


def mark_price(msg: Message) -> float | None:
    """The mark ``msg`` sets for its instrument, or ``None`` if it sets none.

    Components on the hot path test ``type(msg) is Bar`` first and read ``close`` inline; this
    function is the rule they follow for everything else.
    """
    if type(msg) is Bar:
        return msg.close
    if type(msg) is TradeTick:
        return msg.price
    if type(msg) is QuoteTick:
        return 0.5 * (msg.bid_price + msg.ask_price)
    if type(msg) is OrderBookSnapshot and msg.bids and msg.asks:
        return 0.5 * (msg.bids[0][0] + msg.asks[0][0])
    return None
