"""Where the images come from and how they are read (``ganpso.data.load_dataset``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from ganpso.config import bounded
from ganpso.emotions import EMOTIONS
from ganpso.errors import ConfigError


@dataclass
class DataConfig:
    """Where the images come from and how they are read (see ``ganpso.data.load_dataset``)."""

    source: str = "../shared/data/fer2013.zip"
    cache_dir: str | None = "~/.cache/ganpso"
    skip_bad_images: bool = False  # skip (and count) corrupt images instead of stopping
    unknown_classes: Literal["drop", "error"] = "drop"  # class folders outside the seven
    # class folder name -> emotion, beyond the built-in aliases (e.g. {furious: angry})
    class_map: dict[str, str] = field(default_factory=dict)
    ignore_classes: list[str] = field(default_factory=list)  # class folders skipped silently
    split_seed: int = bounded(0, ge=0)  # stratified split for sources that carry none
    val_fraction: float = bounded(0.1, ge=0, lt=1)
    test_fraction: float = bounded(0.1, ge=0, lt=1)
    limit_per_class: int | None = bounded(None, ge=1)  # at most this many per class and split

    def check(self, where: str) -> None:
        wrong = sorted({str(v) for v in self.class_map.values()} - set(EMOTIONS))
        if wrong:
            raise ConfigError(f"{where}.class_map: {wrong} are not emotions; valid: {EMOTIONS}")
        held_out = self.val_fraction + self.test_fraction
        if held_out >= 1:
            raise ConfigError(
                f"{where}: val_fraction + test_fraction is {held_out:g}; "
                "it must stay below 1 to leave Training images"
            )
