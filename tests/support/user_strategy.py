"""A strategy module of the user's own, written next to a config, as the README shows it."""

from __future__ import annotations

from pathlib import Path

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]

BREAKOUT_SOURCE = """\
from pydantic import BaseModel, ConfigDict

from tradegraph.contracts import Bar, OrderSide
from tradegraph.strategies.base import Strategy


class Breakout(Strategy):
    class Params(BaseModel):
        model_config = ConfigDict(frozen=True, extra="forbid")
        lookback: int = 20
        quantity: float = 0.01

    def on_start(self) -> None:
        self.highs: list[float] = []

    def on_bar(self, bar: Bar) -> None:
        if len(self.highs) >= self.params.lookback and bar.close > max(self.highs):
            if self.position(bar.instrument_id) == 0 and not self.has_open_orders(
                bar.instrument_id
            ):
                self.submit_order(bar.instrument_id, OrderSide.BUY, self.params.quantity)
        self.highs = (self.highs + [bar.high])[-self.params.lookback :]
"""


def write_breakout_project(folder: Path, base_config: Path, module: str = "mymodule") -> Path:
    """``folder/<module>.py`` with the README's Breakout and ``folder/config.yaml``: the
    ``base_config`` with its strategies replaced by one Breakout on the first instrument."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{module}.py").write_text(BREAKOUT_SOURCE)
    config = yaml.safe_load(base_config.read_text())
    first = config["instruments"][0]
    config["name"] = "breakout"
    config["strategies"] = [
        {
            "id": "breakout",
            "class_path": f"{module}:Breakout",
            "instruments": [f"{first['symbol']}.{first['venue']}"],
            "params": {"lookback": 20, "quantity": 0.01},
        }
    ]
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path
