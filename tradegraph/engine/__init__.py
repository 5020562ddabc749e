"""The engine: one graph of component cores, assembled from a ``GraphConfig`` and run in-process
under a simulated clock (kernel, schedule, ledger, clock, assembly), the validated market-data
streams it replays, the ``md`` core of paper and live sessions, and the backtest (load, run,
result)."""
