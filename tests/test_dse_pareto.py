"""Pareto sets: the exact non-dominated sort against the O(n^2) definition, ties, NaNs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vitaccel.dse import Objective, pareto_mask, pareto_table, parse_objectives
from vitaccel.errors import UsageError


def _brute(values: np.ndarray, senses: list[str]) -> np.ndarray:
    cost = values * np.array([1.0 if s == "min" else -1.0 for s in senses])
    n = len(cost)
    out = np.zeros(n, dtype=bool)
    for i in range(n):
        if np.isnan(cost[i]).any():
            continue
        dominated = False
        for j in range(n):
            if j == i or np.isnan(cost[j]).any():
                continue
            if np.all(cost[j] <= cost[i]) and np.any(cost[j] < cost[i]):
                dominated = True
                break
        out[i] = not dominated
    return out


@st.composite
def _problems(draw: st.DrawFn) -> tuple[np.ndarray, list[str]]:
    k = draw(st.integers(1, 4))
    n = draw(st.integers(0, 40))
    # Few distinct values so that ties and identical rows are frequent.
    cells = draw(st.lists(st.integers(0, 4), min_size=n * k, max_size=n * k))
    values = np.array(cells, dtype=np.float64).reshape(n, k)
    if n and draw(st.booleans()):
        values[draw(st.integers(0, n - 1)), draw(st.integers(0, k - 1))] = np.nan
    senses = draw(st.lists(st.sampled_from(["min", "max"]), min_size=k, max_size=k))
    return values, senses


@settings(max_examples=100, deadline=None)
@given(_problems())
def test_pareto_matches_brute_force(problem: tuple[np.ndarray, list[str]]) -> None:
    values, senses = problem
    np.testing.assert_array_equal(pareto_mask(values, senses), _brute(values, senses))


def test_identical_points_are_all_kept_and_dominated_ones_dropped() -> None:
    v = np.array([[1.0, 5.0], [1.0, 5.0], [2.0, 5.0], [3.0, 1.0], [3.0, 1.0], [3.0, 2.0]])
    np.testing.assert_array_equal(pareto_mask(v, ["min", "min"]),
                                  [True, True, False, True, True, False])
    # maximise the second column instead: (1,5) still wins, (3,2) beats (3,1)
    np.testing.assert_array_equal(pareto_mask(v, ["min", "max"]),
                                  [True, True, False, False, False, False])


def test_pareto_table_uses_feasible_rows_and_sorts_by_first_objective() -> None:
    df = pd.DataFrame({"point": [0, 1, 2, 3], "feasible": [True, True, False, True],
                       "latency_ms": [3.0, 1.0, 0.5, 2.0], "dsp": [10, 30, 1, 20]})
    objs = parse_objectives("latency_ms,dsp", None)
    front = pareto_table(df, objs)
    assert front["point"].tolist() == [1, 3, 0]
    assert pareto_table(df, objs, feasible_only=False)["point"].tolist() == [2]
    with pytest.raises(UsageError, match="'energy'"):
        pareto_table(df, (Objective("energy", "min"),))


def test_objective_parsing_errors() -> None:
    assert parse_objectives("a, b", "c") == (Objective("a", "min"), Objective("b", "min"),
                                             Objective("c", "max"))
    with pytest.raises(UsageError, match="twice"):
        parse_objectives("a", "a")
    with pytest.raises(UsageError, match="at least one"):
        parse_objectives(None, None)
    with pytest.raises(UsageError, match="sense"):
        pareto_mask(np.zeros((2, 1)), ["up"])
