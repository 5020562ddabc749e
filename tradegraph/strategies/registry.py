"""Find strategy classes by import path or short name, and build strategies from config.

A configuration names its strategy class as ``"package.module:ClassName"`` or as a short name
registered with :func:`register_strategy`; the samples are registered as ``sma_cross``,
``mean_reversion``, ``trendline_breakout``, ``resting_bid``, ``trend_filter`` and
``bracket_breakout``, ``long_short`` and ``funding_carry``.

A strategy module the user wrote (``mymodule:Breakout``) is looked up in the config file's
folder first, then in the working directory (:func:`use_strategy_modules`), and the modules
found are remembered so that Ray workers get them too (``tradegraph.actors.ray_runtime``).
"""

from __future__ import annotations

import importlib
import inspect
import sys
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TypeVar

from tradegraph.config.models import GraphConfig, StrategyConfig
from tradegraph.contracts import Clock, Instrument, Outbox
from tradegraph.errors import ConfigError, StrategyLoadError
from tradegraph.strategies.base import Strategy

S = TypeVar("S", bound=type[Strategy])

# Built-in samples are named by path so that importing the registry imports no strategy.
_registry: dict[str, str | type[Strategy]] = {
    "sma_cross": "tradegraph.strategies.sma_cross:SmaCross",
    "mean_reversion": "tradegraph.strategies.mean_reversion:MeanReversion",
    "trendline_breakout": "tradegraph.strategies.trendline_breakout:TrendlineBreakout",
    "resting_bid": "tradegraph.strategies.resting_bid:RestingBid",
    "trend_filter": "tradegraph.strategies.trend_filter:TrendFilter",
    "bracket_breakout": "tradegraph.strategies.bracket_breakout:BracketBreakout",
    "long_short": "tradegraph.strategies.long_short:LongShort",
    "funding_carry": "tradegraph.strategies.funding_carry:FundingCarry",
}


# Strategy modules found next to a config or in the working directory, by top-level name:
# the module file or package folder, shipped to Ray workers that join a running cluster.
_user_modules: dict[str, Path] = {}


def locate_strategy_modules(config: GraphConfig, folders: Iterable[Path]) -> dict[str, Path]:
    """The user's modules that ``config``'s strategies name, as found in ``folders``.

    For each ``module:Class`` path, the module's top-level name is looked for as
    ``<folder>/<name>.py`` or a package ``<folder>/<name>/``, in the order of ``folders``;
    the first match wins. Names found nowhere (installed packages, registered short names)
    are left out.
    """
    found: dict[str, Path] = {}
    for strategy in config.strategies:
        module_name, sep, _ = strategy.class_path.strip().partition(":")
        top = module_name.split(".", 1)[0]
        if not sep or not top.isidentifier() or top == "tradegraph" or top in found:
            continue
        for folder in folders:
            for candidate in (folder / f"{top}.py", folder / top):
                if candidate.is_file() if candidate.suffix else candidate.is_dir():
                    found[top] = candidate.resolve()
                    break
            if top in found:
                break
    return found


def use_strategy_modules(config: GraphConfig, config_path: str | Path | None) -> list[Path]:
    """Make the strategy modules beside ``config_path`` or in the working directory
    importable in this process, and remember them for Ray workers.

    Returns:
        The module files and package folders found (see :func:`user_strategy_modules`).
    """
    folders = [Path(config_path).resolve().parent] if config_path else []
    folders.append(Path.cwd())
    found = locate_strategy_modules(config, folders)
    for path in found.values():
        folder = str(path.parent)
        if folder not in sys.path:
            sys.path.insert(0, folder)
    _user_modules.update(found)
    return list(found.values())


def user_strategy_modules() -> list[Path]:
    """Strategy modules :func:`use_strategy_modules` found in this process, for Ray workers."""
    return list(_user_modules.values())


def _class_path(cls: type) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


def register_strategy(name: str) -> Callable[[S], S]:
    """Class decorator: make a strategy loadable by the short ``name``.

    Example:
        >>> @register_strategy("my_breakout")
        ... class MyBreakout(Strategy): ...

    The module must be imported before the configuration is loaded for the name to be known;
    a ``module:Class`` path needs no registration.

    Raises:
        StrategyLoadError: ``name`` is malformed or already names a different class.
    """
    if not name or ":" in name or name != name.strip():
        raise StrategyLoadError(
            f"strategy name {name!r} is invalid: use a non-empty name without ':' or spaces"
        )

    def decorator(cls: S) -> S:
        if not (inspect.isclass(cls) and issubclass(cls, Strategy)):
            raise StrategyLoadError(
                f"register_strategy({name!r}) decorates {cls!r}, which is not a Strategy subclass"
            )
        existing = _registry.get(name)
        if existing is not None:
            existing_path = existing if isinstance(existing, str) else _class_path(existing)
            if existing_path != _class_path(cls):
                raise StrategyLoadError(
                    f"strategy name {name!r} is already registered for {existing_path}; "
                    f"pick another name for {_class_path(cls)}"
                )
        _registry[name] = cls
        return cls

    return decorator


def registered_strategies() -> dict[str, str]:
    """Registered short names and the ``module:Class`` each stands for."""
    return {
        name: entry if isinstance(entry, str) else _class_path(entry)
        for name, entry in sorted(_registry.items())
    }


def _strategy_classes_in(module: object) -> list[str]:
    return sorted(
        name
        for name, value in vars(module).items()
        if inspect.isclass(value) and issubclass(value, Strategy) and value is not Strategy
    )


def _import_class(class_path: str, where: str) -> type[Strategy]:
    module_name, _, attr_path = class_path.partition(":")
    if not module_name or not attr_path:
        raise StrategyLoadError(f"{where}: expected 'package.module:ClassName'")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        missing = exc.name or module_name
        if missing == module_name or module_name.startswith(missing + "."):
            raise StrategyLoadError(
                f"{where}: no module named {missing!r}; check the spelling and that it is "
                "next to the config file, in the working directory or on PYTHONPATH"
            ) from exc
        raise StrategyLoadError(
            f"{where}: importing {module_name!r} failed because it imports {missing!r}, "
            "which is not installed"
        ) from exc
    except StrategyLoadError as exc:
        raise StrategyLoadError(f"{where}: {exc}") from exc
    except Exception as exc:
        raise StrategyLoadError(
            f"{where}: importing module {module_name!r} raised {type(exc).__name__}: {exc}"
        ) from exc
    target: object = module
    for part in attr_path.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            found = _strategy_classes_in(module)
            hint = f"; strategy classes there: {found}" if found else ""
            raise StrategyLoadError(
                f"{where}: module {module_name!r} has no attribute {attr_path!r}{hint}"
            ) from None
    if not inspect.isclass(target) or not issubclass(target, Strategy):
        raise StrategyLoadError(
            f"{where}: {attr_path!r} is {target!r}, not a subclass of "
            "tradegraph.strategies.Strategy"
        )
    if target is Strategy:
        raise StrategyLoadError(
            f"{where}: names the Strategy base class itself; name your subclass"
        )
    return target


def _load(class_path: str, where: str) -> type[Strategy]:
    path = class_path.strip()
    if ":" in path:
        return _import_class(path, where)
    entry = _registry.get(path)
    if entry is None:
        guess = ""
        if "." in path:
            module_name, _, class_name = path.rpartition(".")
            guess = f"; did you mean '{module_name}:{class_name}'?"
        raise StrategyLoadError(
            f"{where}: unknown strategy name; use 'package.module:ClassName' or one of "
            f"{sorted(_registry)}{guess}"
        )
    if isinstance(entry, str):
        return _import_class(entry, where)
    return entry


def load_strategy_class(class_path: str) -> type[Strategy]:
    """Resolve ``module:Class`` or a registered short name to a Strategy subclass.

    Raises:
        StrategyLoadError: The module cannot be imported, the class is missing, or it is not
            a Strategy subclass; the message says which and what to check.
    """
    return _load(class_path, f"strategy class {class_path!r}")


def build_strategy(
    config: StrategyConfig,
    instruments: Mapping[str, Instrument],
    clock: Clock,
    outbox: Outbox,
) -> Strategy:
    """Load ``config.class_path`` and construct the strategy.

    Raises:
        StrategyLoadError: The class cannot be loaded, or its constructor raised something
            other than a configuration error.
        ConfigError: The parameters or instruments are invalid (the message names the field).
    """
    cls = _load(config.class_path, f"strategies.{config.id}.class_path ({config.class_path!r})")
    try:
        return cls(config, instruments, clock, outbox)
    except ConfigError:
        raise
    except Exception as exc:
        raise StrategyLoadError(
            f"strategies.{config.id}: constructing {_class_path(cls)} raised "
            f"{type(exc).__name__}: {exc}"
        ) from exc
