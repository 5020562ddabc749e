"""tradegraph: an actor-model trading system for crypto markets, on Ray.

One component graph runs in-process under a simulated clock (backtests, Monte Carlo batches) and
as Ray actors under a simulated or the wall clock (paper and live sessions).
"""

from __future__ import annotations

__version__ = "0.1.0"
