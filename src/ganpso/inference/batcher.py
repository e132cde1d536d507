"""One model call for the faces of many requests: a worker thread that batches what is waiting.

The classifier is not re-entrant and a forward pass on 32 faces costs little more than on one, so
requests never call it themselves. Each hands its face crops to ``FaceBatcher.submit`` and gets a
future; the one worker thread takes the first waiting request, gathers more for up to ``wait_s``
(or until ``max_faces`` are queued), runs ``predict`` once on all their crops and hands each
request its rows.

Example::

    batcher = FaceBatcher(predictor.predict_faces, max_faces=64, wait_s=0.005)
    probs = batcher.submit(crops).result()  # (N, K) for crops (N, 48, 48)
    batcher.close()
"""

from __future__ import annotations

import asyncio
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field

import numpy as np


@dataclass
class Job:
    crops: np.ndarray  # (N, S, S) uint8
    future: Future[np.ndarray] = field(default_factory=Future)


class FaceBatcher:
    """Runs ``predict`` (uint8 crops ``(N, S, S)`` -> probabilities ``(N, K)``) on one thread."""

    def __init__(
        self,
        predict: Callable[[np.ndarray], np.ndarray],
        max_faces: int = 64,
        wait_s: float = 0.005,
    ) -> None:
        if max_faces < 1 or wait_s < 0:
            raise ValueError(f"max_faces {max_faces} must be >= 1 and wait_s {wait_s} >= 0")
        self.predict, self.max_faces, self.wait_s = predict, max_faces, wait_s
        self.jobs: queue.Queue[Job | None] = queue.Queue()
        self.calls = 0  # model calls so far (the load test and the tests read it)
        self.thread = threading.Thread(target=self.work, name="face-batcher", daemon=True)
        self.thread.start()

    def submit(self, crops: np.ndarray) -> Future[np.ndarray]:
        if not self.thread.is_alive():
            raise RuntimeError("the face batcher is closed")
        job = Job(crops)
        self.jobs.put(job)
        return job.future

    async def predict_async(self, crops: np.ndarray) -> np.ndarray:
        """``submit`` for a coroutine; cancelling it drops the job if it has not started."""
        return await asyncio.wrap_future(self.submit(crops))

    def close(self) -> None:
        """Finish the jobs already queued, then stop the worker."""
        self.jobs.put(None)
        self.thread.join()

    def work(self) -> None:
        while True:
            job = self.jobs.get()
            if job is None:
                return
            batch, stop = self.gather(job)
            self.run(batch)
            if stop:
                return

    def gather(self, first: Job) -> tuple[list[Job], bool]:
        """``first`` plus whatever arrives within ``wait_s``, up to ``max_faces`` crops."""
        batch, faces = [first], len(first.crops)
        deadline = time.monotonic() + self.wait_s
        while faces < self.max_faces:
            try:
                job = self.jobs.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            if job is None:
                return batch, True
            batch.append(job)
            faces += len(job.crops)
        return batch, False

    def run(self, batch: list[Job]) -> None:
        # A job whose request went away (its future cancelled) is dropped here.
        live = [job for job in batch if job.future.set_running_or_notify_cancel()]
        if not live:
            return
        try:
            self.calls += 1
            probs = self.predict(np.concatenate([job.crops for job in live]))  # (sum N, K)
        except Exception as exc:  # every waiting request gets the error, the worker lives on
            for job in live:
                job.future.set_exception(exc)
            return
        start = 0
        for job in live:
            job.future.set_result(probs[start : start + len(job.crops)])
            start += len(job.crops)
