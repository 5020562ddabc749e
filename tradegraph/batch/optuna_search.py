"""``--search optuna``: Optuna's TPE sampler proposes the trials of a sweep in rounds.

The sweep asks the sampler for ``round_size`` trials at a time (one per worker), runs them as
one set of chunks on the batch machinery (in this process or on Ray), tells the sampler every
result of the round in trial order, and asks again until it has the trials it wants. Only this
module imports :mod:`optuna`, and only a sweep with ``--search optuna`` imports this module.

Determinism: the sampler is ``TPESampler(seed=...)`` and sees results only at round ends, in
trial order, so a seed and a round size fix every trial; how a round is cut into chunks, and
in which order its chunks finish, changes nothing. A different round size changes what the
sampler knows when it proposes each trial, so it gives other trials.

Recovery contract: a rerun asks again from a fresh study with the same seed; a trial whose
row was written earlier, with the parameters asked now, is told from that row instead of run.

Constraints (``--where``): a proposal that violates one is told to the study as pruned without
running (TPE counts pruned trials among the worst, so it learns to avoid the region) and does
not count as a trial; the sampler proposes again.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.trial import Trial, TrialState

from tradegraph.batch.sweep import Constraint, Dimension
from tradegraph.errors import ConfigError

MAX_PRUNED_IN_A_ROW = 1000
"""Proposals rejected by ``--where`` one after another before the search gives up."""


def distribution(dim: Dimension) -> BaseDistribution:
    """The Optuna distribution of a swept key: a log range is a continuous log-uniform float
    between its ends (its COUNT does not apply); a linear range an int or float on its step;
    a list a categorical over its values.

    Raises:
        ConfigError: a listed value is not a number, text or boolean.
    """
    if dim.log and dim.low is not None and dim.high is not None:
        return FloatDistribution(min(dim.low, dim.high), max(dim.low, dim.high), log=True)
    if dim.step is not None:
        low, high = min(dim.values), max(dim.values)
        if isinstance(dim.step, int):
            return IntDistribution(int(low), int(high), step=abs(dim.step))
        return FloatDistribution(float(low), float(high), step=abs(dim.step))
    for value in dim.values:
        if value is not None and not isinstance(value, bool | int | float | str):
            raise ConfigError(
                f"--grid {dim.key}: --search optuna takes numbers, text or booleans, not {value!r}"
            )
    return CategoricalDistribution(list(dim.values))


def _on_grid(dim: Dimension, value: Any) -> Any:
    """A stepped float range's value as the grid has it (``0.3``, not ``0.30000000000000004``)."""
    if dim.log or dim.step is None or isinstance(dim.step, int):
        return value
    return min(dim.values, key=lambda v: abs(v - value))


class OptunaSearch:
    """A TPE study over a sweep's space, asked and told in rounds.

    Args:
        dims: The swept keys.
        constraints: ``--where`` constraints; proposals violating one are pruned unrun.
        minimise: The objective is a cost.
        seed: Seeds the sampler.
    """

    def __init__(
        self,
        dims: Sequence[Dimension],
        constraints: Sequence[Constraint],
        *,
        minimise: bool,
        seed: int,
    ) -> None:
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.dims = tuple(dims)
        self.constraints = tuple(constraints)
        self.distributions = {d.key: distribution(d) for d in self.dims}
        self.study = optuna.create_study(
            direction="minimize" if minimise else "maximize",
            sampler=optuna.samplers.TPESampler(seed=seed),
        )
        self.pruned = 0

    def ask(self, count: int) -> list[tuple[Trial, dict[str, Any]]]:
        """``count`` proposals that pass every constraint, each with its values by key.

        Raises:
            ConfigError: the constraints rejected :data:`MAX_PRUNED_IN_A_ROW` proposals in a row.
        """
        asked: list[tuple[Trial, dict[str, Any]]] = []
        rejected = 0
        while len(asked) < count:
            trial = self.study.ask(dict(self.distributions))
            params = {d.key: _on_grid(d, trial.params[d.key]) for d in self.dims}
            if all(c.holds(params) for c in self.constraints):
                asked.append((trial, params))
                continue
            self.study.tell(trial, state=TrialState.PRUNED)
            self.pruned += 1
            rejected += 1
            if rejected >= MAX_PRUNED_IN_A_ROW:
                raise ConfigError(
                    f"--where: {rejected} proposals in a row broke the constraints; "
                    "widen the --grid ranges or loosen --where"
                )
        return asked

    def tell(self, trial: Trial, row: Mapping[str, Any], objective: str) -> None:
        """Tell the study a trial's row: its objective, or failed when the trial failed or
        its objective is not a finite number."""
        value = row.get(objective)
        if row.get("status") == "ok" and isinstance(value, int | float) and math.isfinite(value):
            self.study.tell(trial, float(value))
        else:
            self.study.tell(trial, state=TrialState.FAIL)
