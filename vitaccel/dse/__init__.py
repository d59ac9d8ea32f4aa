"""Design-space exploration: sweeps over hardware knobs, bit widths and unit variants.

A design space (YAML, see :mod:`vitaccel.dse._space`) names a base design, the axes to vary,
how to sample them, constraints and objectives. :func:`run_sweep` evaluates every point with
:func:`vitaccel.estimate` (and, with ``accuracy=N``, a bit-exact simulation per distinct
quantized graph), in parallel and resumably, into a results folder; :func:`pareto_table`
extracts the exact Pareto set.
"""

from vitaccel.dse._expr import Expr, parse_expr
from vitaccel.dse._pareto import Objective, pareto_mask, parse_objectives
from vitaccel.dse._runner import SweepResult, pareto_table, plan_points, run_sweep
from vitaccel.dse._sampling import sample_points
from vitaccel.dse._space import Axis, Sampling, Space, load_space
from vitaccel.dse._store import load_results

__all__ = [
    "Axis",
    "Expr",
    "Objective",
    "Sampling",
    "Space",
    "SweepResult",
    "load_results",
    "load_space",
    "pareto_mask",
    "pareto_table",
    "parse_expr",
    "parse_objectives",
    "plan_points",
    "run_sweep",
    "sample_points",
]
