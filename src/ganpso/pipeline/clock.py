"""Wall seconds of a run stage over every session, interrupted ones included.

A stage that crashes or is stopped resumes in a later session; its ``stage.json`` must count the
time of every session, not only the last. The clock keeps each session's seconds in
``RUN/<stage>/sessions.json`` and rewrites the running session's figure whenever the stage logs
(at most every ``every`` seconds), so a session that dies loses at most the time since its last
progress line. When the stage finishes, ``stage.json`` takes the sessions and the file goes.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ganpso.files import write_json_atomic
from ganpso.metrics import read_json

SESSIONS_FILE = "sessions.json"
SAVE_EVERY_S = 30.0


class StageClock:
    """The running session's seconds beside those of the sessions before it."""

    def __init__(self, folder: Path, device: str, every: float = SAVE_EVERY_S) -> None:
        self.path, self.every = folder / SESSIONS_FILE, every
        self.sessions: list[dict[str, Any]] = (
            read_json(self.path)["sessions"] if self.path.exists() else []
        )
        self.current: dict[str, Any] = {"device": device, "seconds": 0.0}
        self.sessions.append(self.current)
        self.started = time.perf_counter()
        self.saved_at = -float("inf")

    def tick(self) -> None:
        """Record the running session's seconds (at most every ``every`` seconds)."""
        now = time.perf_counter()
        if now - self.saved_at < self.every:
            return
        self.current["seconds"] = round(now - self.started, 1)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_json_atomic({"sessions": self.sessions}, self.path)
        self.saved_at = now

    def ticking(self, log: Callable[[str], None]) -> Callable[[str], None]:
        """``log`` that also ticks the clock: progress lines are the stage's heartbeat."""

        def logged(message: str) -> None:
            log(message)
            self.tick()

        return logged

    def stop(self) -> list[dict[str, Any]]:
        """Every session's seconds and device, this one's final; the file is removed."""
        self.current["seconds"] = round(time.perf_counter() - self.started, 1)
        self.path.unlink(missing_ok=True)
        return self.sessions
