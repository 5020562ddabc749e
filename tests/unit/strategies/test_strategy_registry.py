"""Loading strategy classes by path or short name, and building strategies from config."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.support.stubs import btcusdt
from tradegraph.config.models import StrategyConfig
from tradegraph.engine.clock import SimClock
from tradegraph.errors import ConfigError, StrategyLoadError
from tradegraph.strategies import (
    MeanReversion,
    SmaCross,
    Strategy,
    TrendlineBreakout,
    build_strategy,
    load_strategy_class,
    register_strategy,
    registered_strategies,
)
from tradegraph.strategies import registry as registry_module
from tradegraph.testing import RecordingOutbox

BTC = "BTCUSDT.BINANCE"
INSTRUMENTS = {BTC: btcusdt(min_quantity=0.0, min_notional=0.0)}


@pytest.fixture
def private_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    """Registrations made by a test vanish after it."""
    monkeypatch.setattr(registry_module, "_registry", dict(registry_module._registry))


@pytest.fixture
def user_modules(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A directory on sys.path holding small user modules written by the tests."""
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def config(class_path: str, params: dict[str, Any] | None = None) -> StrategyConfig:
    return StrategyConfig(id="s1", class_path=class_path, instruments=(BTC,), params=params or {})


@pytest.mark.parametrize(
    ("name", "cls"),
    [
        ("sma_cross", SmaCross),
        ("mean_reversion", MeanReversion),
        ("trendline_breakout", TrendlineBreakout),
    ],
)
def test_short_names_resolve_to_the_samples(name: str, cls: type[Strategy]) -> None:
    assert load_strategy_class(name) is cls


def test_module_colon_class_path_resolves() -> None:
    assert load_strategy_class("tradegraph.strategies.sma_cross:SmaCross") is SmaCross


def test_registered_strategies_lists_sample_paths() -> None:
    names = registered_strategies()

    assert names["sma_cross"] == "tradegraph.strategies.sma_cross:SmaCross"
    assert {"mean_reversion", "trendline_breakout"} <= set(names)


def test_missing_module_says_which_and_where_to_look() -> None:
    with pytest.raises(StrategyLoadError) as info:
        load_strategy_class("no_such_pkg.strats:Fast")

    assert "no module named 'no_such_pkg'" in str(info.value)
    assert "PYTHONPATH" in str(info.value)


def test_module_importing_an_uninstalled_package_names_that_package(user_modules: Path) -> None:
    (user_modules / "needs_missing_dep.py").write_text("import not_installed_dep_qq\n")

    with pytest.raises(StrategyLoadError, match="imports 'not_installed_dep_qq'"):
        load_strategy_class("needs_missing_dep:Anything")


def test_module_raising_at_import_is_reported(user_modules: Path) -> None:
    (user_modules / "broken_at_import.py").write_text("raise RuntimeError('bad module')\n")

    with pytest.raises(StrategyLoadError, match="raised RuntimeError: bad module"):
        load_strategy_class("broken_at_import:Anything")


def test_missing_class_lists_strategy_classes_in_module() -> None:
    with pytest.raises(StrategyLoadError) as info:
        load_strategy_class("tradegraph.strategies.sma_cross:SmaCros")

    assert "has no attribute 'SmaCros'" in str(info.value)
    assert "SmaCross" in str(info.value)


def test_class_that_is_not_a_strategy_is_refused() -> None:
    with pytest.raises(
        StrategyLoadError, match=r"not a subclass of tradegraph\.strategies\.Strategy"
    ):
        load_strategy_class("collections:OrderedDict")


def test_strategy_base_class_itself_is_refused() -> None:
    with pytest.raises(StrategyLoadError, match="base class"):
        load_strategy_class("tradegraph.strategies.base:Strategy")


def test_unknown_short_name_lists_names_and_suggests_colon_form() -> None:
    with pytest.raises(StrategyLoadError) as info:
        load_strategy_class("my_pkg.strats.Fast")

    assert "'sma_cross'" in str(info.value)
    assert "did you mean 'my_pkg.strats:Fast'" in str(info.value)


def test_path_without_class_is_refused() -> None:
    with pytest.raises(StrategyLoadError, match=r"expected 'package\.module:ClassName'"):
        load_strategy_class("tradegraph.strategies.sma_cross:")


@pytest.mark.usefixtures("private_registry")
def test_register_strategy_makes_short_name_loadable() -> None:
    @register_strategy("always_flat")
    class AlwaysFlat(Strategy):
        pass

    assert load_strategy_class("always_flat") is AlwaysFlat
    assert registered_strategies()["always_flat"].endswith(":" + AlwaysFlat.__qualname__)


@pytest.mark.usefixtures("private_registry")
def test_register_strategy_refuses_a_taken_name() -> None:
    with pytest.raises(StrategyLoadError, match="already registered"):

        @register_strategy("sma_cross")
        class Impostor(Strategy):
            pass


def test_register_strategy_refuses_malformed_name() -> None:
    with pytest.raises(StrategyLoadError, match="invalid"):
        register_strategy("pkg:Cls")


def test_build_strategy_constructs_with_validated_params() -> None:
    strategy = build_strategy(
        config("sma_cross", {"fast_period": 3, "slow_period": 5}),
        INSTRUMENTS,
        SimClock(),
        RecordingOutbox(),
    )

    assert isinstance(strategy, SmaCross)
    assert (strategy.params.fast_period, strategy.params.slow_period) == (3, 5)
    assert strategy.component_id == "strategy:s1"


def test_build_strategy_error_names_config_field() -> None:
    with pytest.raises(StrategyLoadError, match=r"^strategies\.s1\.class_path \('nope'\)"):
        build_strategy(config("nope"), INSTRUMENTS, SimClock(), RecordingOutbox())


def test_build_strategy_passes_param_errors_through() -> None:
    with pytest.raises(ConfigError, match=r"strategies\.s1\.params\.slow_period: "):
        build_strategy(
            config("sma_cross", {"fast_period": 10, "slow_period": 5}),
            INSTRUMENTS,
            SimClock(),
            RecordingOutbox(),
        )


def test_build_strategy_wraps_constructor_crash(user_modules: Path) -> None:
    (user_modules / "crashing_strategy.py").write_text(
        "from tradegraph.strategies import Strategy\n"
        "class Crashing(Strategy):\n"
        "    def __init__(self, *args, **kwargs):\n"
        "        super().__init__(*args, **kwargs)\n"
        "        raise KeyError('warmup')\n"
    )

    with pytest.raises(StrategyLoadError, match=r"strategies\.s1: constructing .*KeyError"):
        build_strategy(
            config("crashing_strategy:Crashing"), INSTRUMENTS, SimClock(), RecordingOutbox()
        )


def test_user_module_strategy_loads_and_builds(user_modules: Path) -> None:
    (user_modules / "user_strategies_ok.py").write_text(
        "from pydantic import Field\n"
        "from tradegraph.strategies import Strategy, StrategyParams\n"
        "class Holder(Strategy):\n"
        "    class Params(StrategyParams):\n"
        "        size: float = Field(default=1.0, gt=0)\n"
    )

    strategy = build_strategy(
        config("user_strategies_ok:Holder", {"size": 2.0}),
        INSTRUMENTS,
        SimClock(),
        RecordingOutbox(),
    )

    assert type(strategy).__name__ == "Holder"
    assert strategy.params.model_dump() == {"size": 2.0}
