"""Executors: where a batch of objective evaluations runs, behind one ``map`` method.

Every executor turns ``fn(item)`` for each item into an :class:`Outcome` holding either the float
value or a one-line error (the exception, or ``non-finite fitness`` for NaN / inf) plus the
seconds it took. An exception raised by ``fn`` never leaves ``map``; ``KeyboardInterrupt`` and
``SystemExit`` do, so a search can still be stopped (and resumed).

- ``sequential``: in this process, one item after the other (the default).
- ``process``: a local pool of ``spawn``-ed processes, each limited to ``threads_per_worker``
  torch threads so ``workers`` evaluations do not fight over the cores.
- ``ray``: tasks on a Ray cluster (``address``) or on a local Ray started here; the optional
  extra ``pip install 'ganpso[ray]'``.

``fn`` and the items must pickle for ``process`` and ``ray``: use module-level functions.

Example:
    >>> with build_executor("sequential") as executor:
    ...     [o.value for o in executor.map(abs, [-1.5, 2.0])]
    [1.5, 2.0]
"""

from __future__ import annotations

import concurrent.futures as cf
import inspect
import math
import multiprocessing
import os
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any, Literal, Self

from ganpso.errors import ConfigError

Objective = Callable[[Any], Any]  # item -> a number (anything float() takes)
OutcomeCallback = Callable[[int, "Outcome"], None]  # (item index, outcome), as each one finishes


@dataclass(frozen=True)
class Outcome:
    """One evaluation: ``value`` when it succeeded, else ``error`` says why."""

    value: float | None
    error: str | None
    seconds: float

    @property
    def ok(self) -> bool:
        return self.error is None


def describe_error(exc: BaseException) -> str:
    """``"ValueError: first line of the message"``."""
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0]}" if text else type(exc).__name__


def evaluate_item(fn: Objective, item: Any) -> Outcome:
    """Call ``fn(item)``; an exception or a non-finite value becomes a failed outcome."""
    start = time.perf_counter()
    try:
        value = float(fn(item))
    except Exception as exc:  # a crashed evaluation must not end the search
        return Outcome(None, describe_error(exc), time.perf_counter() - start)
    seconds = time.perf_counter() - start
    if not math.isfinite(value):
        return Outcome(None, f"non-finite fitness ({value})", seconds)
    return Outcome(value, None, seconds)


class Executor(ABC):
    """Runs ``fn`` over items; implementations differ only in where the calls happen."""

    @abstractmethod
    def map(
        self, fn: Objective, items: Sequence[Any], on_result: OutcomeCallback | None = None
    ) -> list[Outcome]:
        """Outcomes in the order of ``items``; ``on_result`` hears each one as it finishes."""

    def close(self) -> None:
        """Release workers; the executor may not be used afterwards."""
        return None  # nothing to release in-process

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class SequentialExecutor(Executor):
    """In this process, one call after the other."""

    def map(
        self, fn: Objective, items: Sequence[Any], on_result: OutcomeCallback | None = None
    ) -> list[Outcome]:
        outcomes = []
        for index, item in enumerate(items):
            outcomes.append(evaluate_item(fn, item))
            if on_result is not None:
                on_result(index, outcomes[-1])
        return outcomes


def _limit_threads(threads: int) -> None:
    """Worker initializer: torch would otherwise use every core in every worker."""
    import torch

    torch.set_num_threads(threads)


def _default_workers(threads_per_worker: int) -> int:
    return max(1, (os.cpu_count() or 1) // threads_per_worker)


def _check_counts(name: str, workers: int | None, threads_per_worker: int) -> None:
    if workers is not None and workers < 1:
        raise ConfigError(f"executor {name!r}: workers must be >= 1, got {workers}")
    if threads_per_worker < 1:
        raise ConfigError(
            f"executor {name!r}: threads_per_worker must be >= 1, got {threads_per_worker}"
        )


class ProcessPoolExecutor(Executor):
    """A pool of ``workers`` spawned processes, started on the first ``map`` and then reused.

    ``spawn`` (not ``fork``) because forking a process that already runs torch threads can
    deadlock. A worker that dies (segfault, out of memory) fails the items it had and the pool
    is rebuilt for the next ``map``.
    """

    def __init__(self, workers: int | None = None, threads_per_worker: int = 1) -> None:
        _check_counts("process", workers, threads_per_worker)
        self.workers = workers or _default_workers(threads_per_worker)
        self.threads_per_worker = threads_per_worker
        self._pool: cf.ProcessPoolExecutor | None = None

    def _ensure_pool(self) -> cf.ProcessPoolExecutor:
        if self._pool is None:
            self._pool = cf.ProcessPoolExecutor(
                max_workers=self.workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_limit_threads,
                initargs=(self.threads_per_worker,),
            )
        return self._pool

    def map(
        self, fn: Objective, items: Sequence[Any], on_result: OutcomeCallback | None = None
    ) -> list[Outcome]:
        pool = self._ensure_pool()
        futures = {pool.submit(evaluate_item, fn, item): i for i, item in enumerate(items)}
        outcomes: list[Outcome | None] = [None] * len(items)
        for future in cf.as_completed(futures):
            index = futures[future]
            outcomes[index] = _future_outcome(future)
            if on_result is not None:
                on_result(index, outcomes[index])
        if any(isinstance(f.exception(), BrokenProcessPool) for f in futures):
            self.close()  # the next map starts a fresh pool
        return [o for o in outcomes if o is not None]

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


def _future_outcome(future: cf.Future) -> Outcome:
    """The worker's outcome, or a failure when the worker itself died or could not unpickle."""
    try:
        return future.result()
    except Exception as exc:
        return Outcome(None, f"worker failed: {describe_error(exc)}", 0.0)


def _ray_evaluate(fn: Objective, item: Any, threads: int) -> Outcome:
    """A Ray task: Ray sets OMP_NUM_THREADS=1 in its workers, so torch needs telling."""
    _limit_threads(threads)
    return evaluate_item(fn, item)


class RayExecutor(Executor):
    """Tasks on Ray: a cluster at ``address`` or, when None, a local Ray started on first use.

    Each task reserves ``threads_per_worker`` CPUs and ``gpus_per_worker`` GPUs, and sets torch
    to that many threads. At most ``workers`` tasks are in flight (None: as many as the cluster
    schedules); a local Ray started here gets ``workers * threads_per_worker`` CPUs. ``close``
    shuts Ray down only when this executor started it.
    """

    def __init__(
        self,
        address: str | None = None,
        workers: int | None = None,
        threads_per_worker: int = 1,
        gpus_per_worker: float = 0.0,
    ) -> None:
        _check_counts("ray", workers, threads_per_worker)
        if gpus_per_worker < 0:
            raise ConfigError(
                f"executor 'ray': gpus_per_worker must be >= 0, not {gpus_per_worker}"
            )
        self._ray = _import_ray()  # fail before any compute when the extra is missing
        self.address = address
        self.workers = workers
        self.threads_per_worker = threads_per_worker
        self.gpus_per_worker = gpus_per_worker
        self._started = False
        self._task: Any = None

    def _connect(self) -> Any:
        ray = self._ray
        if not ray.is_initialized():
            try:
                self._init(ray)
            except ConnectionError as exc:
                raise ConfigError(f"ray: cannot connect to {self.address!r} ({exc})") from None
            self._started = True
        if self._task is None:
            self._task = ray.remote(_ray_evaluate).options(
                num_cpus=self.threads_per_worker, num_gpus=self.gpus_per_worker
            )
        return ray

    def _init(self, ray: Any) -> None:
        options = {"address": self.address, "ignore_reinit_error": True, "include_dashboard": False}
        if self.address is None and self.workers is not None:
            try:
                ray.init(**options, num_cpus=self.workers * self.threads_per_worker)
                return
            except ValueError:  # None still finds RAY_ADDRESS or a `ray start` cluster: join it
                pass
        ray.init(**options)

    def map(
        self, fn: Objective, items: Sequence[Any], on_result: OutcomeCallback | None = None
    ) -> list[Outcome]:
        ray = self._connect()
        fn_ref = ray.put(fn)  # shipped once, not once per task
        limit = self.workers or max(len(items), 1)
        waiting = list(enumerate(items))[::-1]  # popped from the end: item order
        running: dict[Any, int] = {}
        outcomes: list[Outcome | None] = [None] * len(items)
        while waiting or running:
            while waiting and len(running) < limit:
                index, item = waiting.pop()
                running[self._task.remote(fn_ref, item, self.threads_per_worker)] = index
            [ref], _ = ray.wait(list(running), num_returns=1)
            index = running.pop(ref)
            outcomes[index] = _ray_outcome(ray, ref)
            if on_result is not None:
                on_result(index, outcomes[index])
        return [o for o in outcomes if o is not None]

    def close(self) -> None:
        if self._started and self._ray.is_initialized():
            self._ray.shutdown()
        self._started = False
        self._task = None


def _import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise ConfigError("executor 'ray' needs Ray: pip install 'ganpso[ray]'") from None
    return ray


def _ray_outcome(ray: Any, ref: Any) -> Outcome:
    """The task's outcome, or a failure when its worker died (``evaluate_item`` caught the rest)."""
    try:
        return ray.get(ref)
    except Exception as exc:  # RayTaskError's own first line names only the task: use its cause
        cause = getattr(exc, "cause", None) or exc
        return Outcome(None, f"worker failed: {describe_error(cause)}", 0.0)


ExecutorName = Literal["sequential", "process", "ray"]
_REGISTRY: dict[str, Callable[..., Executor]] = {
    "sequential": SequentialExecutor,
    "process": ProcessPoolExecutor,
    "ray": RayExecutor,
}


def list_executors() -> list[str]:
    return sorted(_REGISTRY)


def build_executor(name: ExecutorName, **options: Any) -> Executor:
    """Build a registered executor; unknown names and options fail listing the valid ones.

    Example:
        >>> build_executor("process", workers=2, threads_per_worker=1).workers
        2
    """
    if name not in _REGISTRY:
        raise ConfigError(f"executor {name!r} is unknown; valid executors: {list_executors()}")
    factory = _REGISTRY[name]
    valid = sorted(inspect.signature(factory).parameters)
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise ConfigError(f"executor {name!r}: unknown option(s) {unknown}; valid options: {valid}")
    return factory(**options)
