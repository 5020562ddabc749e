"""Walk-forward windows, efficiency, stability and stitching."""

from __future__ import annotations

import numpy as np
import pytest

from tradegraph.batch.walkforward import (
    Fold,
    efficiency,
    parameter_stability,
    parse_duration,
    plan_folds,
    stitch,
)
from tradegraph.errors import ConfigError

DAY = 86_400 * 1_000_000_000


def test_rolling_folds_slide_the_train_window_by_the_test_length() -> None:
    folds = plan_folds(0, 31 * DAY, train_ns=10 * DAY, test_ns=5 * DAY)

    assert folds == [
        Fold(0, 0, 10 * DAY, 10 * DAY, 15 * DAY),
        Fold(1, 5 * DAY, 15 * DAY, 15 * DAY, 20 * DAY),
        Fold(2, 10 * DAY, 20 * DAY, 20 * DAY, 25 * DAY),
        Fold(3, 15 * DAY, 25 * DAY, 25 * DAY, 30 * DAY),
    ]


def test_anchored_folds_keep_the_train_start_and_the_embargo_opens_a_gap() -> None:
    folds = plan_folds(
        0,
        31 * DAY,
        train_ns=10 * DAY,
        test_ns=5 * DAY,
        step_ns=7 * DAY,
        embargo_ns=DAY,
        anchored=True,
    )

    assert [(f.train_start_ns, f.train_end_ns) for f in folds] == [
        (0, 10 * DAY),
        (0, 17 * DAY),
        (0, 24 * DAY),
    ]
    assert all(f.test_start_ns == f.train_end_ns + DAY for f in folds)
    assert all(f.test_end_ns - f.test_start_ns == 5 * DAY for f in folds)
    assert folds[-1].test_end_ns <= 31 * DAY


def test_data_too_short_for_one_fold_is_one_clear_error() -> None:
    with pytest.raises(ConfigError, match=r"need 36d of data, but the data spans only 31\.00d"):
        plan_folds(0, 31 * DAY, train_ns=30 * DAY, test_ns=5 * DAY, embargo_ns=DAY)


@pytest.mark.parametrize("text", ["7", "0d", "1.5d", "3w", "-2d", ""])
def test_bad_durations_are_refused(text: str) -> None:
    with pytest.raises(ConfigError, match="--train"):
        parse_duration(text, "--train")


def test_durations() -> None:
    assert parse_duration("30d", "--train") == 30 * DAY
    assert parse_duration("12h", "--test") == DAY // 2
    assert parse_duration("90m", "--step") == 90 * 60 * 1_000_000_000


def test_efficiency_is_annualised_oos_over_annualised_is_and_undefined_for_a_losing_train() -> None:
    fold = Fold(0, 0, 10 * DAY, 10 * DAY, 20 * DAY)

    assert efficiency(0.01, 0.005, fold) == pytest.approx(
        ((1.005) ** 36.5 - 1) / ((1.01) ** 36.5 - 1)
    )
    assert efficiency(-0.01, 0.005, fold) is None


def test_parameter_stability_gives_the_modal_share_and_the_coefficient_of_variation() -> None:
    stability = parameter_stability(
        [{"fast": 10, "algo": "twap"}, {"fast": 20, "algo": "twap"}, {"fast": 10, "algo": "vwap"}]
    )

    assert stability["fast"]["modal_value"] == 10
    assert stability["fast"]["modal_share"] == pytest.approx(2 / 3)
    assert stability["fast"]["cv"] == pytest.approx(np.std([10, 20, 10]) / np.mean([10, 20, 10]))
    assert stability["algo"]["modal_value"] == "twap"
    assert stability["algo"]["cv"] is None


def test_stitching_compounds_each_fold_from_the_previous_folds_growth() -> None:
    curves = [
        (np.array([1, 2], np.int64), np.array([100.0, 110.0])),
        (np.array([3, 4], np.int64), np.array([100.0, 90.0])),
    ]

    table = stitch(curves, 100.0)

    assert table.column("equity").to_pylist() == pytest.approx([100.0, 110.0, 110.0, 99.0])
    assert table.column("fold").to_pylist() == [0, 0, 1, 1]
