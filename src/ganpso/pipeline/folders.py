"""The files of a run folder: every reader and writer of the pipeline's own formats is here.

    RUN/config.yaml                     the resolved ``RunConfig``, written before any stage
    RUN/<stage>/stage.json              a finished stage: wall seconds (every session), device
    RUN/<stage>/stage-earlier.json      an extended stage's record of its earlier sessions
    RUN/<stage>/sessions.json           an unfinished stage: seconds of each session so far
    RUN/search/best-config.yaml         a search's chosen settings on its base recipe
    RUN/replaced/<time>/                stages made with an earlier config (compare: cells)
    RUN/report/                         report.md, report.html and their figures
    MODEL/history.jsonl                 one row per epoch (written by ``classifier.training``)
    MODEL/metrics-<split>.json          an evaluation (written by ``classifier.evaluation``)
    MODEL/predictions-<split>.npz       y_true, y_pred (int64, test-image order), probs if kept
                                        (written by ``classifier.evaluation``)
    CELLS/<method>/seed<k>/cell.json    a finished comparison cell: device, seconds, recipe

A *cell* is one finished (method, seed) evaluation: its PrivateTest metrics, its predictions on
the test images and its ``cell.json``. An external model evaluated once is a cell with
``seed=None`` in ``CELLS/<method>/``.

Example:
    >>> cells = load_cells(Path("runs/main/compare"))  # doctest: +SKIP
    >>> [(c.method, c.seed) for c in cells][:2]  # doctest: +SKIP
    [('cnn', 0), ('cnn', 1)]
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ganpso.classifier.config import TrainConfig
from ganpso.classifier.evaluation import metrics_file, predictions_file
from ganpso.config import read_yaml, write_yaml
from ganpso.errors import ConfigError
from ganpso.files import read_jsonl
from ganpso.metrics import read_json, write_json
from ganpso.pipeline.config import RunConfig

CONFIG_FILE = "config.yaml"
STAGE_FILE, EARLIER_STAGE_FILE = "stage.json", "stage-earlier.json"
BEST_CONFIG_FILE = "best-config.yaml"
REPLACED_DIR, REPORT_DIR = "replaced", "report"
HISTORY_FILE = "history.jsonl"
PRIVATE_METRICS_FILE = metrics_file("PrivateTest")
PREDICTIONS_FILE = predictions_file("PrivateTest")
CELL_FILE = "cell.json"


def read_run_config(run_dir: Path) -> RunConfig:
    if not (run_dir / CONFIG_FILE).exists():
        raise ConfigError(f"{run_dir}: not a ganpso run folder ({CONFIG_FILE} missing)")
    return RunConfig.from_dict(read_yaml(run_dir / CONFIG_FILE))


def write_run_config(config: RunConfig, run_dir: Path) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    write_yaml(config.to_dict(), run_dir / CONFIG_FILE)


def stage_done(run_dir: Path, name: str) -> bool:
    return (run_dir / name / STAGE_FILE).exists()


def read_stage_record(folder: Path) -> dict[str, Any] | None:
    """A stage's ``stage.json`` (``seconds``, ``device``), None if it has not finished."""
    path = folder / STAGE_FILE
    return read_json(path) if path.exists() else None


def write_stage_record(run_dir: Path, name: str, sessions: list[dict[str, Any]]) -> None:
    """Write ``stage.json`` from the seconds and device of each session the stage ran in
    (interrupted ones included); an extended stage also counts its earlier sessions."""
    folder = run_dir / name
    folder.mkdir(parents=True, exist_ok=True)
    earlier_path = folder / EARLIER_STAGE_FILE
    if earlier_path.exists():
        earlier = json.loads(earlier_path.read_text())
        before = earlier.get("sessions") or [earlier["seconds"]]
        sessions = [
            *(
                s if isinstance(s, dict) else {"device": earlier.get("device"), "seconds": s}
                for s in before
            ),
            *sessions,
        ]
    devices = list(dict.fromkeys(str(s["device"]) for s in sessions))
    record: dict[str, Any] = {
        "stage": name,
        "seconds": round(sum(s["seconds"] for s in sessions), 1),
        "device": ", then ".join(devices),
    }
    if len(sessions) > 1:
        record["sessions"] = sessions
    (folder / STAGE_FILE).write_text(json.dumps(record, indent=2) + "\n")
    earlier_path.unlink(missing_ok=True)


def reopen_stage(run_dir: Path, name: str) -> None:
    """Mark a finished stage unfinished, keeping its record for the seconds of the next one."""
    if stage_done(run_dir, name):  # else it stopped mid-way and simply resumes
        (run_dir / name / STAGE_FILE).replace(run_dir / name / EARLIER_STAGE_FILE)


def replaced_folder(root: Path, stamp: str | None = None) -> Path:
    """``root/replaced/<time>/``: where outputs made with an earlier recipe are kept."""
    return root / REPLACED_DIR / (stamp or time.strftime("%Y%m%d-%H%M%S"))


def read_best_config(search_dir: Path) -> TrainConfig:
    return TrainConfig.from_yaml(search_dir / BEST_CONFIG_FILE)


def write_best_config(config: TrainConfig, search_dir: Path) -> None:
    write_yaml(config.to_dict(), search_dir / BEST_CONFIG_FILE)


def read_history(folder: Path) -> list[dict[str, Any]]:
    """A training's rows, one per epoch (``seconds``, ``val/macro_f1``, ...)."""
    return read_jsonl(folder / HISTORY_FILE)


def read_predictions(folder: Path) -> tuple[np.ndarray, np.ndarray] | None:
    """``(y_true, y_pred)`` of the predictions file, None if there is none."""
    path = folder / PREDICTIONS_FILE
    if not path.exists():
        return None
    with np.load(path) as saved:
        return saved["y_true"], saved["y_pred"]


def cell_done(folder: Path) -> bool:
    return (folder / CELL_FILE).exists()


def read_cell_record(folder: Path) -> dict[str, Any]:
    return read_json(folder / CELL_FILE)


def write_cell_record(folder: Path, record: dict[str, Any]) -> None:
    """The last file a cell writes: its existence marks the cell finished."""
    write_json(record, folder / CELL_FILE)


@dataclass
class Cell:
    """One (method, seed) evaluation: the metrics report and, when saved, the predictions."""

    method: str
    seed: int | None
    metrics: dict[str, Any]
    y_true: np.ndarray | None = None
    y_pred: np.ndarray | None = None
    run: dict[str, Any] = field(default_factory=dict)  # cell.json: device, wall_seconds, ...

    @property
    def has_predictions(self) -> bool:
        return self.y_true is not None and self.y_pred is not None


def load_cell(cell_dir: Path, method: str, seed: int | None) -> Cell:
    """Read the metrics and, if present, the predictions and the cell record."""
    cell = Cell(method, seed, read_json(cell_dir / PRIVATE_METRICS_FILE))
    predictions = read_predictions(cell_dir)
    if predictions is not None:
        cell.y_true, cell.y_pred = predictions
    if cell_done(cell_dir):
        cell.run = read_cell_record(cell_dir)
    return cell


def load_cells(compare_dir: Path) -> list[Cell]:
    """Cells of ``<method>/seed<k>/`` folders, and of ``<method>/`` holding its own metrics.

    ``replaced/`` holds cells made with an earlier recipe (``ganpso compare``): never read.
    """
    cells = []
    folders = (p for p in Path(compare_dir).iterdir() if p.is_dir() and p.name != REPLACED_DIR)
    for method_dir in sorted(folders):
        if (method_dir / PRIVATE_METRICS_FILE).exists():
            cells.append(load_cell(method_dir, method_dir.name, None))
        for seed_dir in sorted(method_dir.glob("seed*"), key=_seed_of):
            if (seed_dir / PRIVATE_METRICS_FILE).exists():
                cells.append(load_cell(seed_dir, method_dir.name, _seed_of(seed_dir)))
    return cells


def _seed_of(path: Path) -> int:
    suffix = path.name.removeprefix("seed")
    return int(suffix) if suffix.isdigit() else -1
