"""Adapters to the outside world: one folder per venue family (``ccxt/``), behind the protocols
of :mod:`tradegraph.adapters.base`. Imported by ``actors`` and ``cli`` only; component cores
never see them."""
