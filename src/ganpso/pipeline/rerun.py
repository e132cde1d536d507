"""A rerun of a run folder with an edited config: which stages go stale, which only continue.

A stage is stale when a config section it depends on (its ``inputs``, upstream ones included)
changed. Its folder, the report built on it and the old ``config.yaml`` are moved to
``replaced/<time>/`` rather than deleted, and the stage runs again. A stage whose sections
changed only by a larger budget (``BUDGET_KEYS``) is not stale: it continues from its checkpoint
(the GAN's lr is constant, so more steps later equal more steps now; a search asked to rescore
more of its best settings keeps its evaluations), and the stages after it run again. The device
and thread count are no input: a run started on CPU may continue on a GPU.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

from ganpso.pipeline.config import RunConfig
from ganpso.pipeline.folders import (
    CONFIG_FILE,
    REPORT_DIR,
    read_run_config,
    reopen_stage,
    replaced_folder,
    write_run_config,
)

RUNTIME_KEYS = {"device", "num_threads"}  # where a config runs, not what it computes
# stage -> (its own config section, the keys of that section that only raise its budget)
BUDGET_KEYS = {
    "gan": ("gan", ("steps", "time_limit_minutes")),
    "search": ("search", ("rescore_top_k",)),
    "search-nogan": ("search", ("rescore_top_k",)),
    "search-random": ("search", ("rescore_top_k",)),
}


class StageOutputs(Protocol):
    """What a rerun needs to know of a stage (``ganpso.pipeline.run.Stage``)."""

    @property
    def name(self) -> str:  # also its folder in the run
        ...

    @property
    def inputs(self) -> tuple[str, ...]:  # the RunConfig sections it depends on
        ...

    @property
    def extra_outputs(self) -> tuple[str, ...]:  # files it writes outside its own folder
        ...


def config_sections(config: RunConfig) -> dict[str, Any]:
    """The config by top-level section, without the keys that only say where it runs."""

    def strip(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: strip(v) for k, v in node.items() if k not in RUNTIME_KEYS}
        return node

    return strip(config.to_dict())


def stale_stages(stages: Sequence[StageOutputs], saved: RunConfig, config: RunConfig) -> list[str]:
    """The stages whose inputs differ between the config a run folder holds and the new one."""
    old, new = config_sections(saved), config_sections(config)
    changed = {key for key in old.keys() | new.keys() if old.get(key) != new.get(key)}
    return [stage.name for stage in stages if changed & set(stage.inputs)]


def budget_raised(stage: StageOutputs, saved: RunConfig, config: RunConfig) -> bool:
    """Whether ``stage``'s inputs differ only by larger budget keys (None: no limit)."""
    if stage.name not in BUDGET_KEYS:
        return False
    section, keys = BUDGET_KEYS[stage.name]
    old, new = config_sections(saved), config_sections(config)
    if any(old[s] != new[s] for s in stage.inputs if s != section):
        return False
    rest_old = {k: v for k, v in old[section].items() if k not in keys}
    rest_new = {k: v for k, v in new[section].items() if k not in keys}
    return rest_old == rest_new and all(
        new[section][k] is None
        or (old[section][k] is not None and new[section][k] >= old[section][k])
        for k in keys
    )


def set_aside(run_dir: Path, stage: StageOutputs, archive: Path) -> None:
    """Move a stage's outputs from the run folder into ``archive``."""
    if (run_dir / stage.name).exists():
        shutil.move(run_dir / stage.name, archive / stage.name)
    for extra in stage.extra_outputs:
        if (run_dir / extra).exists():
            (archive / stage.name).mkdir(parents=True, exist_ok=True)
            shutil.move(run_dir / extra, archive / stage.name / Path(extra).name)


def open_run_folder(
    config: RunConfig,
    run_dir: Path,
    stages: Sequence[StageOutputs],
    log: Callable[[str], None] = print,
) -> None:
    """Write the resolved config first; on a rerun with another config, set stale stages aside."""
    if (run_dir / CONFIG_FILE).exists():
        saved = read_run_config(run_dir)
        changed = stale_stages(stages, saved, config)
        stale = [s for s in stages if s.name in changed and (run_dir / s.name).exists()]
        extended = [s for s in stale if budget_raised(s, saved, config)]
        for stage in extended:
            reopen_stage(run_dir, stage.name)
            log(f"{stage.name}: budget raised, continues from its checkpoint")
        stale = [s for s in stale if s not in extended]
        report = bool(changed) and (run_dir / REPORT_DIR).exists()  # built on every stage
        if stale or report:
            archive = replaced_folder(run_dir)
            archive.mkdir(parents=True)
            shutil.copy2(run_dir / CONFIG_FILE, archive / CONFIG_FILE)
            for stage in stale:
                set_aside(run_dir, stage, archive)
            if report:
                shutil.move(run_dir / REPORT_DIR, archive / REPORT_DIR)
            names = [s.name for s in stale] + ([REPORT_DIR] if report else [])
            log(f"config changed: {', '.join(names)} will run again; old outputs in {archive}")
    write_run_config(config, run_dir)
