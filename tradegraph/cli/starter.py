"""``tradegraph init DIR``: a starter project that runs at once.

It holds a graph config (the packaged default with the starter's strategy in place of the
sample), the strategy module beside it, and a README that says how to run and change them.
"""

from __future__ import annotations

import argparse
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from tradegraph.errors import ConfigError

STRATEGY_MODULE = "strategy"

STRATEGY_SOURCE = '''\
"""A channel breakout: buy when the close clears the highest high of the last `lookback` bars,
sell everything when it falls below their lowest low."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from tradegraph.contracts import Bar, OrderSide
from tradegraph.strategies.base import Strategy


class Breakout(Strategy):
    class Params(BaseModel):
        model_config = ConfigDict(frozen=True, extra="forbid")
        lookback: int = 60
        quantity: float = 0.05

    def on_start(self) -> None:
        self.highs: list[float] = []
        self.lows: list[float] = []

    def on_bar(self, bar: Bar) -> None:
        iid = bar.instrument_id
        lookback = self.params.lookback
        if len(self.highs) >= lookback and not self.has_open_orders(iid):
            held = self.position(iid)
            if held == 0 and bar.close > max(self.highs):
                self.submit_order(iid, OrderSide.BUY, self.params.quantity)
            elif held > 0 and bar.close < min(self.lows):
                self.submit_order(iid, OrderSide.SELL, held)
        self.highs = (self.highs + [bar.high])[-lookback:]
        self.lows = (self.lows + [bar.low])[-lookback:]
'''

README_TEXT = """\
# {name}

A tradegraph project: `config.yaml` runs the `Breakout` strategy of `strategy.py` on Binance
BTC/USDT 1-minute bars (July 2025) that ship with tradegraph.

```bash
tradegraph backtest config.yaml                 # outputs in out/backtest/latest/
tradegraph backtest config.yaml --set strategies.breakout.params.lookback=120
tradegraph montecarlo config.yaml --paths 200   # the strategy over simulated markets
tradegraph stress config.yaml                   # the strategy under each stress preset
```

- Change the strategy in `strategy.py`: `on_bar` sees every bar; `submit_order` sends an order
  intent to Risk, which rounds it, checks the limits in `config.yaml` and may refuse it.
- `class_path: strategy:Breakout` in `config.yaml` names it; tradegraph finds modules next to
  the config file, so the commands above work from any folder.
- Your own data: `--data bars.parquet` (columns `ts`, `open`, `high`, `low`, `close`, `volume`)
  or `tradegraph data download`.
"""

CONFIG_HEADER = """\
# A starter config written by `tradegraph init`: the packaged default backtest with the
# Breakout strategy of strategy.py. Run it with `tradegraph backtest config.yaml`.
"""


def _starter_config(name: str) -> dict[str, Any]:
    default = resources.files("tradegraph").joinpath("config/defaults/backtest.yaml").read_text()
    config: dict[str, Any] = yaml.safe_load(default)
    first = config["instruments"][0]
    config["name"] = name
    config["strategies"] = [
        {
            "id": "breakout",
            "class_path": f"{STRATEGY_MODULE}:Breakout",
            "instruments": [f"{first['symbol']}.{first['venue']}"],
            "params": {"lookback": 60, "quantity": 0.05},
        }
    ]
    config.setdefault("report", {})["out_dir"] = "out/backtest"
    return config


def write_starter(folder: str | Path) -> list[Path]:
    """Write the starter project into ``folder`` (created if missing).

    Returns:
        The files written.

    Raises:
        ConfigError: ``folder`` is a file, or already holds one of the starter's files.
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"{folder}: exists and is not a folder")
    name = "".join(c if c.isalnum() or c in "-_" else "-" for c in folder.resolve().name)
    files = {
        folder / "config.yaml": CONFIG_HEADER
        + yaml.safe_dump(_starter_config(name or "starter"), sort_keys=False),
        folder / f"{STRATEGY_MODULE}.py": STRATEGY_SOURCE,
        folder / "README.md": README_TEXT.format(name=name or "starter"),
    }
    taken = [str(path) for path in files if path.exists()]
    if taken:
        raise ConfigError(f"{taken[0]}: already exists; choose an empty or new folder")
    folder.mkdir(parents=True, exist_ok=True)
    for path, text in files.items():
        path.write_text(text)
    return list(files)


def cmd_init(args: argparse.Namespace) -> int:
    written = write_starter(args.dir)
    print(f"starter project in {Path(args.dir).resolve()}:")
    for path in written:
        print(f"  {path.name}")
    print(f"run it: tradegraph backtest {Path(args.dir) / 'config.yaml'}")
    return 0


def add_init_command(sub: Any) -> None:
    """Register ``init`` on the ``tradegraph`` command."""
    init = sub.add_parser(
        "init", help="write a starter project (config, strategy module, README) into DIR"
    )
    init.add_argument("dir", metavar="DIR", help="folder to write into (created if missing)")
    init.set_defaults(func=cmd_init)
