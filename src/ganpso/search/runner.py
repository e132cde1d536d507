"""Drive any ask / tell optimizer over a search space: cache, executor, resume, outputs.

One iteration: ``ask`` the optimizer, decode each unit-cube point into settings, take the values
already in the evaluation cache, evaluate the rest through the executor (each distinct setting
once), ``tell`` every value (a failure is told as None, the worst), then save the search state.
The runner knows nothing about what is being tuned: the objective maps a settings dict to a
float to maximise (or minimise, with the optimizer's direction).

Files in ``out_dir``:

- ``evaluations.jsonl``: one row per evaluation as it finishes (settings, value or error,
  seconds); the cache, keyed by the settings' canonical JSON. A crash loses no finished one.
- ``search-state.json``: the optimizer's state after the last finished iteration, the history
  and the space; written atomically. A new ``run_search`` on the same folder resumes from it, and
  the particles finished before a crash come back from the cache, so the result equals that of
  an uninterrupted search (for a deterministic objective).
- ``history.json``, ``best.yaml``, ``convergence.png``: written at the end.

Example:
    >>> import tempfile
    >>> from ganpso.search import FloatParam, SearchSpace, SequentialExecutor, build_optimizer
    >>> space = SearchSpace([FloatParam("x", -1.0, 1.0)])
    >>> outcome = run_search(
    ...     build_optimizer("pso", dim=1, iterations=3, batch_size=4), space,
    ...     lambda s: -s["x"] ** 2, SequentialExecutor(), tempfile.mkdtemp(), log=lambda _: None,
    ... )
    >>> outcome.evaluations, outcome.best_value <= 0
    (12, True)
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ganpso.config import write_yaml
from ganpso.errors import CheckpointError
from ganpso.files import write_json_atomic
from ganpso.search.executors import Executor, Outcome
from ganpso.search.optimizer import Optimizer, Trial
from ganpso.search.space import SearchSpace

STATE_VERSION = 1
CACHE_FILE, STATE_FILE = "evaluations.jsonl", "search-state.json"
HISTORY_FILE, BEST_FILE, PLOT_FILE = "history.json", "best.yaml", "convergence.png"
Settings = dict[str, Any]


@dataclass
class SearchOutcome:
    """What ``run_search`` returns; ``evaluations`` counts only the objective calls of this run."""

    best_settings: Settings | None
    best_value: float | None
    history: list[dict[str, Any]]
    evaluations: int
    cache_hits: int
    failures: int
    out_dir: Path


def settings_key(settings: Settings) -> str:
    """Canonical JSON: sorted keys, floats to 12 significant digits (decoding jitter is equal)."""
    rounded = {k: float(f"{v:.12g}") if isinstance(v, float) else v for k, v in settings.items()}
    return json.dumps(rounded, sort_keys=True, default=str)


class EvaluationCache:
    """The ``evaluations.jsonl`` rows by settings key; ``add`` appends (and flushes) one row."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.rows: dict[str, dict[str, Any]] = {}
        if path.exists():
            for line in path.read_text().splitlines():
                row = _parse_row(line)
                if row is not None:
                    self.rows[row["key"]] = row

    def get(self, key: str) -> dict[str, Any] | None:
        return self.rows.get(key)

    def add(self, settings: Settings, outcome: Outcome, trial: Trial) -> dict[str, Any]:
        row = {
            "key": settings_key(settings),
            "settings": settings,
            "value": outcome.value,
            "error": outcome.error,
            "seconds": round(outcome.seconds, 4),
            "iteration": trial.iteration,
            "particle": trial.particle,
        }
        with self.path.open("a") as f:
            f.write(json.dumps(row, default=str) + "\n")
            f.flush()
        self.rows[row["key"]] = row
        return row


def _parse_row(line: str) -> dict[str, Any] | None:
    """A row, or None for a blank line or one cut short by a crash mid-write."""
    try:
        row = json.loads(line)
    except json.JSONDecodeError:
        return None
    return row if isinstance(row, dict) and "key" in row else None


def _planned_iterations(optimizer: Optimizer) -> int:
    """Samplers carry ``iterations``; ParticleSwarm keeps it in its config."""
    planned = getattr(optimizer, "iterations", None)
    return int(planned if planned is not None else optimizer.config.iterations)  # type: ignore[attr-defined]


def _resume(optimizer: Optimizer, space: SearchSpace, path: Path) -> list[dict[str, Any]]:
    """Load a saved search into ``optimizer``; the history so far (empty when starting)."""
    if not path.exists():
        return []
    state = json.loads(path.read_text())
    if state.get("version") != STATE_VERSION or state.get("space") != space.to_dict():
        raise CheckpointError(
            f"{path}: saved for another search space or version; use another out_dir"
        )
    optimizer.load_state_dict(state["optimizer"])
    return [dict(h) for h in state["history"]]


def _evaluate_batch(
    trials: list[Trial],
    settings: list[Settings],
    objective: Callable[[Settings], float],
    executor: Executor,
    cache: EvaluationCache,
    log: Callable[[str], None] = print,
) -> tuple[list[dict[str, Any]], int]:
    """Cache rows for every trial, evaluating each missing setting once; (rows, new calls)."""
    keys = [settings_key(s) for s in settings]
    missing: dict[str, int] = {}  # key -> first trial index with it
    for i, key in enumerate(keys):
        if cache.get(key) is None and key not in missing:
            missing[key] = i
    todo = list(missing.values())

    def store(j: int, outcome: Outcome) -> None:  # as each one finishes: a crash loses none
        cache.add(settings[todo[j]], outcome, trials[todo[j]])
        result = "failed" if outcome.value is None else f"{outcome.value:.4f}"
        log(f"  evaluation {j + 1}/{len(todo)}: {result} ({outcome.seconds:.1f} s)")

    executor.map(objective, [settings[i] for i in todo], on_result=store)
    return [_require(cache.get(key), key) for key in keys], len(todo)


def _require(row: dict[str, Any] | None, key: str) -> dict[str, Any]:
    if row is None:  # an executor that skipped on_result for an item
        raise RuntimeError(f"executor returned no outcome for {key}")
    return row


def _summarise(
    iteration: int, optimizer: Optimizer, trials: list[Trial], rows: list[dict[str, Any]]
) -> dict[str, Any]:
    values = [row["value"] for row in rows]
    finite = [v for v in values if v is not None]
    positions = np.stack([t.position for t in trials])  # (batch, dim)
    return {
        "iteration": iteration,
        "best": optimizer.best_value,  # best so far
        "mean": float(np.mean(finite)) if finite else None,
        "spread": float(positions.std(axis=0).mean()),  # mean per-coordinate std of the points
        "failed": len(values) - len(finite),
        "values": values,  # per evaluation, in trial order; None = failed
    }


def _format_line(entry: dict[str, Any], planned: int, seconds: float) -> str:
    def number(x: float | None) -> str:
        return "-" if x is None else f"{x:.4f}"

    return (
        f"iter {entry['iteration'] + 1}/{planned}  best {number(entry['best'])}  "
        f"mean {number(entry['mean'])}  failed {entry['failed']}  {seconds:.1f} s"
    )


def run_search(
    optimizer: Optimizer,
    space: SearchSpace,
    objective: Callable[[Settings], float],
    executor: Executor,
    out_dir: str | Path,
    log: Callable[[str], None] = print,
) -> SearchOutcome:
    """Run ``optimizer`` to the end (resuming a search saved in ``out_dir``) and write its files.

    ``objective(settings) -> float`` must pickle for process / Ray executors (a module-level
    function or an instance of a module-level class). It is never called twice for the same
    settings in one ``out_dir``, failures included (delete their rows to retry them).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    cache = EvaluationCache(out_dir / CACHE_FILE)
    history = _resume(optimizer, space, out_dir / STATE_FILE)
    planned, calls, hits = _planned_iterations(optimizer), 0, 0
    while not optimizer.done:
        start, iteration = time.perf_counter(), optimizer.iteration
        trials = optimizer.ask()
        settings = [space.decode(t.position) for t in trials]
        rows, new = _evaluate_batch(trials, settings, objective, executor, cache, log)
        calls, hits = calls + new, hits + len(trials) - new
        for trial, row in zip(trials, rows, strict=True):
            if row["error"] is not None:
                log(f"iter {iteration + 1} particle {trial.particle} failed: {row['error']}")
            optimizer.tell(trial, row["value"])
        seconds = time.perf_counter() - start
        history.append(_summarise(iteration, optimizer, trials, rows) | {"seconds": seconds})
        log(_format_line(history[-1], planned, seconds))
        state = {"version": STATE_VERSION, "space": space.to_dict(), "iteration": iteration + 1}
        state |= {"optimizer": optimizer.state_dict(), "history": history}
        write_json_atomic(state, out_dir / STATE_FILE)
    return _finish(optimizer, space, history, out_dir, calls, hits, log)


def _finish(
    optimizer: Optimizer,
    space: SearchSpace,
    history: list[dict[str, Any]],
    out_dir: Path,
    calls: int,
    hits: int,
    log: Callable[[str], None],
) -> SearchOutcome:
    position = optimizer.best_position
    best = None if position is None else space.decode(position)
    write_json_atomic(
        {"best_value": optimizer.best_value, "best_settings": best, "iterations": history},
        out_dir / HISTORY_FILE,
    )
    if best is not None:
        write_yaml(best, out_dir / BEST_FILE)
        log(f"best {optimizer.best_value:.4f}  {best}")
    else:
        log("every evaluation failed: no best settings")
    plot_convergence(history, out_dir / PLOT_FILE)
    failures = sum(h["failed"] for h in history)
    return SearchOutcome(best, optimizer.best_value, history, calls, hits, failures, out_dir)


def plot_convergence(history: list[dict[str, Any]], path: str | Path) -> None:
    """Best-so-far and iteration mean on the left axis, particle spread on the right one."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    x = [h["iteration"] + 1 for h in history]

    def series(name: str) -> list[float]:
        return [math.nan if h[name] is None else h[name] for h in history]

    fig = Figure(figsize=(6, 3.5), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.plot(x, series("best"), "o-", label="best so far")
    ax.plot(x, series("mean"), "s--", label="iteration mean")
    ax.set_xlabel("iteration")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("fitness")
    spread_ax = ax.twinx()
    spread_ax.plot(x, series("spread"), ":", color="grey", label="spread")
    spread_ax.set_ylabel("particle spread (std)")
    lines = ax.get_lines() + spread_ax.get_lines()
    ax.legend(lines, [line.get_label() for line in lines], loc="best", fontsize="small")
    fig.savefig(path, dpi=120)
