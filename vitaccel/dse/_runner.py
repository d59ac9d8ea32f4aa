"""Running a sweep: sample, prune, group, evaluate in parallel, store, summarise."""

from __future__ import annotations

import json
import math
import multiprocessing
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from vitaccel.dse._evaluate import SweepContext, Task, _graph_key, _numerics_key, run_task
from vitaccel.dse._knobs import EXIT_KEY, apply_hw, apply_precision
from vitaccel.dse._pareto import Objective, pareto_mask
from vitaccel.dse._sampling import sample_points
from vitaccel.dse._space import Space, load_space
from vitaccel.dse._store import ResultStore, write_text
from vitaccel.errors import UsageError, VitaccelError

__all__ = ["SweepResult", "pareto_table", "plan_points", "run_sweep"]


@dataclass(frozen=True)
class PlannedPoint:
    """A sampled point that passed pre-evaluation pruning."""

    pid: int
    knobs: dict[str, Any]
    reference: bool
    graph_key: str
    numerics_key: str


@dataclass(frozen=True)
class Plan:
    """The points of a space after sampling and pruning.

    Attributes
    ----------
    sampled : int
        Points drawn (plus the reference point).
    points : tuple of PlannedPoint
        Points to evaluate, by id.
    pruned : int
        Points a constraint rejected from their knobs alone (never evaluated).
    invalid : int
        Knob combinations that are not a valid design (e.g. a clock above a board's maximum).
    invalid_example : str
        The first such combination's error.
    """

    sampled: int
    points: tuple[PlannedPoint, ...]
    pruned: int
    invalid: int
    invalid_example: str = ""


@dataclass(frozen=True)
class SweepResult:
    """What :func:`run_sweep` did.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per evaluated point (knobs, metrics, ``feasible``), sorted by point id.
    out : Path
        The output folder.
    plan : Plan
        Sampling and pruning counts.
    evaluated, skipped : int
        Points evaluated in this run; points found already done.
    simulations : int
        Bit-exact simulations this run needed (one per distinct quantized graph).
    numerics_keys : int
        Distinct quantized graphs in the table.
    seconds : float
        Wall time of the evaluation phase.
    pareto : pandas.DataFrame or None
        Pareto set of the space's objectives (feasible points), if it names any.
    """

    table: pd.DataFrame
    out: Path
    plan: Plan
    evaluated: int
    skipped: int
    simulations: int
    numerics_keys: int
    seconds: float
    pareto: pd.DataFrame | None = field(default=None)

    @property
    def points_per_s(self) -> float:
        """Evaluated points per second of wall time in this run."""
        return self.evaluated / self.seconds if self.seconds > 0 else float("nan")

    def summary(self) -> str:
        """A few readable lines."""
        p = self.plan
        lines = [f"{p.sampled} points sampled, {p.pruned} pruned by constraints before "
                 f"evaluation, {p.invalid} invalid designs skipped"]
        if p.invalid:
            lines[-1] += f" (first: {p.invalid_example})"
        lines.append(f"{self.evaluated} evaluated in {self.seconds:.1f} s "
                     f"({self.points_per_s:.1f} points/s), {self.skipped} already done")
        n_feasible = int(self.table["feasible"].sum()) if len(self.table) else 0
        lines.append(f"{len(self.table)} rows, {n_feasible} satisfy the constraints, "
                     f"{self.numerics_keys} distinct quantized graphs")
        if "accuracy" in self.table.columns:
            lines.append(f"accuracy: {self.simulations} bit-exact simulations this run "
                         f"(one per distinct quantized graph; tiling, clock and board reuse them)")
        lines.append(f"results: {self.out / 'results.parquet'} and results.csv")
        return "\n".join(lines)


def plan_points(space: Space) -> Plan:
    """Sample the space, drop invalid designs and prune on knob-only constraints.

    A point is pruned only when a constraint is already *false* with its knobs known and
    every metric unknown (three-valued logic, see :mod:`vitaccel.dse._expr`), so no point
    that satisfies the constraints is ever dropped. The reference point is never pruned.
    """
    points = [(pid, knobs, False) for pid, knobs in enumerate(sample_points(space))]
    if space.reference:
        points.append((len(points), {}, True))
    ctx = _context(space, 0)
    kept: list[PlannedPoint] = []
    pruned = invalid = 0
    example = ""
    prec_cache: dict[tuple, Any] = {}
    for pid, knobs, is_ref in points:
        try:
            cfg = apply_hw(space.hw, knobs)
            pkey = tuple(sorted((k, v) for k, v in knobs.items()
                                if k.startswith("precision")))
            if pkey not in prec_cache:
                prec_cache[pkey] = apply_precision(space.precision, dict(pkey))
            prec = prec_cache[pkey]
        except UsageError as exc:
            invalid += 1
            example = example or f"point {pid} {knobs}: {exc}"
            continue
        if not is_ref:
            env = space.knob_env(knobs, cfg)
            if any(c.evaluate(env) is False for c in space.constraints):
                pruned += 1
                continue
        gkey = _graph_key(ctx, prec, cfg, knobs.get(EXIT_KEY))
        kept.append(PlannedPoint(pid, knobs, is_ref, gkey, _numerics_key(gkey, cfg)))
    return Plan(len(points), tuple(kept), pruned, invalid, example)


def _context(space: Space, accuracy: int) -> SweepContext:
    return SweepContext(space.model, space.checkpoint, space.hw, space.precision, space.data,
                        space.task, accuracy, space.constraints, space.keys)


def _tasks(points: list[PlannedPoint], ctx: SweepContext, workers: int,
           chunk_size: int | None) -> list[Task]:
    """Batches of points sharing a graph (so a worker quantizes it once per batch).

    With accuracy on, a numerics key is never split across batches (one simulation each).
    """
    size = chunk_size or max(1, min(512, math.ceil(len(points) / (4 * workers))))
    groups: dict[str, list[PlannedPoint]] = {}
    for p in points:
        groups.setdefault(p.graph_key, []).append(p)
    tasks = []
    for group in groups.values():
        if ctx.accuracy_images:
            group = sorted(group, key=lambda p: (p.numerics_key, p.pid))
        batch: list[PlannedPoint] = []
        for i, p in enumerate(group):
            batch.append(p)
            boundary = (i + 1 == len(group) or not ctx.accuracy_images
                        or group[i + 1].numerics_key != p.numerics_key)
            if len(batch) >= size and boundary:
                tasks.append(batch)
                batch = []
        if batch:
            tasks.append(batch)
    return [Task(ctx, tuple((p.pid, p.knobs, p.reference) for p in b)) for b in tasks]


def _serial(tasks: list[Task]) -> Iterator[tuple[list[dict], int]]:
    for task in tasks:
        yield run_task(task)


def _ignore_sigint() -> None:
    """Worker initializer: Ctrl-C is the parent's to handle (it stops handing out tasks)."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _pool(tasks: list[Task], workers: int) -> Iterator[tuple[list[dict], int]]:
    from concurrent.futures import ProcessPoolExecutor, as_completed
    from concurrent.futures.process import BrokenProcessPool

    # Not "fork": a child forked after torch ran its thread pool in this process can hang
    # as soon as it builds a model. The fork server is a fresh process, forked from.
    method = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() \
        else "spawn"
    context = multiprocessing.get_context(method)
    if method == "forkserver":
        # Imported once in the server (no threads started), inherited by every worker.
        context.set_forkserver_preload(["vitaccel.dse._evaluate", "vitaccel.cost",
                                        "vitaccel.ir._build"])
    pool = ProcessPoolExecutor(max_workers=workers, initializer=_ignore_sigint,
                               mp_context=context)
    futures = [pool.submit(run_task, t) for t in tasks]

    def results() -> Iterator[tuple[list[dict], int]]:
        broken = False
        try:
            # After a worker dies every unfinished future fails; the finished ones are still
            # handed out (and saved) before the error is raised.
            for f in as_completed(futures):
                if isinstance(f.exception(), BrokenProcessPool):
                    broken = True
                    continue
                yield f.result()
        except BaseException:
            # Ctrl-C or the caller stopped early: the points in flight are given up, so stop
            # the workers now instead of waiting for their tasks (the executor has no public
            # way to do that before Python 3.14).
            procs = list((getattr(pool, "_processes", None) or {}).values())
            pool.shutdown(wait=False, cancel_futures=True)
            for proc in procs:
                proc.terminate()
            raise
        pool.shutdown(wait=False, cancel_futures=True)
        if broken:
            raise VitaccelError("a worker process died; the finished points are saved, re-run "
                                "the same command to resume")

    return results()


def _dask_client(address: Any) -> tuple[Any, bool]:
    """A ``distributed.Client`` for ``address`` (or the client given) and whether we own it."""
    from distributed import Client

    if isinstance(address, Client):
        return address, False
    try:
        return Client(address, timeout="20s"), True
    except (OSError, TimeoutError) as exc:
        raise UsageError(f"--dask {address}: cannot connect to the scheduler ({exc})") from None


def _dask_workers(client: Any) -> int:
    """Worker threads of the cluster (at least 1)."""
    workers = client.scheduler_info().get("workers", {})
    return max(1, sum(int(w.get("nthreads", 1)) for w in workers.values()))


def _dask(tasks: list[Task], client: Any, own: bool) -> Iterator[tuple[list[dict], int]]:
    from distributed import as_completed

    futures = [client.submit(run_task, t, pure=False) for t in tasks]

    def results() -> Iterator[tuple[list[dict], int]]:
        try:
            for f in as_completed(futures):
                yield f.result()
        finally:
            client.cancel(futures)
            if own:
                client.close()

    return results()


def run_sweep(space: Space | str | os.PathLike[str], out: str | os.PathLike[str], *,
              accuracy: int = 0, workers: int | None = None, dask: Any = None,
              resume: bool = False, progress: bool = True,
              chunk_size: int | None = None) -> SweepResult:
    """Evaluate every point of a design space and write the results folder.

    Parameters
    ----------
    space : Space or path
        The design space (YAML path or :func:`load_space` result).
    out : path
        Output folder (see :mod:`vitaccel.dse._store`); an existing sweep of the same space
        is continued (points already written are skipped).
    accuracy : int
        Also simulate bit-exactly on this many labelled images (0: cost only). Each distinct
        quantized graph is simulated once and its accuracy reused by every point sharing it.
    workers : int, optional
        Local worker processes (default: all cores; 1 runs in this process).
    dask : str or distributed.Client, optional
        Scheduler address (or a client) of a Dask cluster to evaluate on instead.
    resume : bool
        Require ``out`` to hold a sweep of this space already.
    progress : bool
        Show a tqdm progress bar (points, points/s, time left) on stderr.
    chunk_size : int, optional
        Points per task (and per result chunk); default from the point count and workers.

    Returns
    -------
    SweepResult

    Raises
    ------
    UsageError
        Bad space, a folder of another space, accuracy on unlabelled data, ...
    VitaccelError
        A worker died (finished points are kept; re-run to resume).
    """
    if not isinstance(space, Space):
        space = load_space(space)
    if accuracy < 0:
        raise UsageError(f"--accuracy: expected a number of images >= 0, got {accuracy}")
    if space.needs_accuracy and not accuracy:
        raise UsageError(f"{space.source}: constraints read accuracy metrics: pass --accuracy N")
    workers = (os.cpu_count() or 1) if workers is None else workers
    if workers < 1:
        raise UsageError(f"--workers: expected >= 1, got {workers}")
    store = ResultStore(Path(out), space, accuracy, resume=resume)
    plan = plan_points(space)
    done = store.done_ids()
    todo = [p for p in plan.points if p.pid not in done]
    ctx = _context(space, accuracy)
    if dask is not None:
        client, own = _dask_client(dask)
        tasks = _tasks(todo, ctx, _dask_workers(client), chunk_size)
        results = _dask(tasks, client, own)
    else:
        tasks = _tasks(todo, ctx, workers, chunk_size)
        results = _serial(tasks) if workers == 1 or len(tasks) <= 1 else _pool(tasks, workers)
    bar = _progress(len(todo), space.name, progress)
    simulations = evaluated = 0
    t0 = time.perf_counter()
    try:
        for rows, sims in results:
            store.write_chunk(rows)
            evaluated += len(rows)
            simulations += sims
            bar.update(len(rows))
    finally:
        bar.close()
        results.close()
    seconds = time.perf_counter() - t0
    table = store.table()
    store.write_table(table)
    pareto = None
    if space.objectives and len(table):
        pareto = pareto_table(table, space.objectives)
        write_text(store.out / "pareto.csv", pareto.to_csv(index=False))
    result = SweepResult(table, store.out, plan, evaluated, len(plan.points) - len(todo),
                         simulations, int(table["numerics"].nunique()) if len(table) else 0,
                         seconds, pareto)
    summary = {"space": space.name, "sampled": plan.sampled, "pruned": plan.pruned,
               "invalid": plan.invalid, "evaluated": evaluated, "skipped": result.skipped,
               "rows": len(table), "simulations": simulations,
               "numerics_keys": result.numerics_keys, "seconds": round(seconds, 3),
               "accuracy_images": accuracy}
    write_text(store.out / "summary.json", json.dumps(summary, indent=2) + "\n")
    return result


class _NoBar:
    def update(self, n: int) -> None:
        return None

    def close(self) -> None:
        return None


def _progress(total: int, name: str, enabled: bool) -> Any:
    if not enabled:
        return _NoBar()
    from tqdm import tqdm

    return tqdm(total=total, desc=f"sweep {name}", unit="pt", file=sys.stderr,
                smoothing=0.1, mininterval=0.5)


def pareto_table(table: pd.DataFrame, objectives: tuple[Objective, ...],
                 *, feasible_only: bool = True) -> pd.DataFrame:
    """The Pareto-optimal rows of ``table`` for ``objectives``, sorted by the first one.

    Raises
    ------
    UsageError
        An objective that is not a column of the table.
    """
    for o in objectives:
        if o.metric not in table.columns:
            numeric = [c for c in table.columns if pd.api.types.is_numeric_dtype(table[c])]
            raise UsageError(f"objective {o.metric!r}: no such column in the results "
                             f"(numeric columns: {', '.join(numeric)})")
    rows = table[table["feasible"].astype(bool)] if feasible_only else table
    values = rows[[o.metric for o in objectives]].astype(float).to_numpy()
    mask = pareto_mask(values, [o.sense for o in objectives])
    front = rows[mask]
    first = objectives[0]
    return front.sort_values([first.metric, "point"], ascending=[first.sense == "min", True],
                             kind="stable").reset_index(drop=True)

