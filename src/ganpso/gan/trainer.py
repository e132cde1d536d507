"""GAN training: optimizers, the generator's moving average, checkpoints, resume, divergence.

A run folder holds ``config.yaml`` (first), ``history.jsonl`` (a line per ``log_every`` steps),
``gan.safetensors`` (G, its average and D, with a JSON header) and ``gan-state.pt`` (optimizers,
random states, augmentation strength; loaded with ``weights_only=True``), both written
atomically every ``checkpoint_every`` steps, ``generator.safetensors`` (the averaged generator
alone, for sampling), ``samples/`` (a grid with one row per emotion from fixed seeds) and, at
the end, ``run.json`` (device, training seconds over every session, steps).
A NaN or infinite loss rolls back to the last checkpoint with fresh random states; after
``max_rollbacks`` the run stops with a message.
"""

from __future__ import annotations

import copy
import json
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from ganpso.checkpoint import load_state_file
from ganpso.config import read_yaml, validate, write_yaml
from ganpso.data import Split
from ganpso.device import describe_device, resolve_device, resolve_precision
from ganpso.emotions import EMOTIONS
from ganpso.errors import CheckpointError, ConfigError, GanpsoError
from ganpso.files import atomic_write, read_jsonl, write_json_atomic
from ganpso.gan.augment import AdaptiveStrength
from ganpso.gan.checkpoint import load_gan_weights, save_gan_weights, save_generator
from ganpso.gan.config import GanConfig
from ganpso.gan.guidance import ClassifierGuide
from ganpso.gan.loss import HingeLoss
from ganpso.gan.networks import Discriminator, Generator
from ganpso.gan.sample import from_uint8, save_grid

GRID_COLUMNS = 10
SNAPSHOT_DIR = "snapshots"


class DivergenceError(GanpsoError):
    """Training produced NaN/inf losses too often to continue."""


class GanTrainer:
    def __init__(self, config: GanConfig, out: Path, log: Callable[[str], None] = print) -> None:
        validate(config)  # a config built in Python gets the checks a YAML one gets
        self.config, self.out, self.log = config, out, log
        self.device = resolve_device(config.device)
        if config.num_threads:
            torch.set_num_threads(config.num_threads)
        # Hinge-loss gradients of a saturated D underflow into denormal floats, which x86 CPUs
        # process far slower than normal ones (a process-wide setting).
        torch.set_flush_denormal(True)
        torch.manual_seed(config.seed)
        self.G = Generator(config.z_dim, config.g_width, upsample=config.upsample).to(self.device)
        self.D = Discriminator(config.d_width, spectral=config.d_spectral_norm).to(self.device)
        self.G.to(memory_format=torch.channels_last)
        self.D.to(memory_format=torch.channels_last)
        self.G_ema = copy.deepcopy(self.G).eval().requires_grad_(False)
        betas = (config.beta1, config.beta2)
        self.opt_G = torch.optim.Adam(self.G.parameters(), lr=config.lr_g, betas=betas)
        self.opt_D = torch.optim.Adam(self.D.parameters(), lr=config.lr_d, betas=betas)
        self.strength = AdaptiveStrength(
            config.ada_target,
            speed_images=config.ada_speed_images,
            p=config.augment_p or 0.0,
        )
        self.rngs = {
            name: torch.Generator(device="cpu").manual_seed(config.seed * 1000 + i)
            for i, name in enumerate(("data", "latent", "augment"))
        }
        self.loss = HingeLoss(
            self.G,
            self.D,
            self.strength,
            self.device,
            config.precision,
            self.rngs["augment"],
            config.ac_weight,
            guide=self.load_guide(),
            guide_weight=config.guide_weight,
            diversity_weight=config.diversity_weight,
        )
        self.step = 0
        self.rollbacks = 0
        self.seconds_before = 0.0  # training time of earlier sessions of this run (resume)
        self.grid_z = torch.randn(
            GRID_COLUMNS, config.z_dim, generator=torch.Generator().manual_seed(12345)
        )

    def load_guide(self) -> ClassifierGuide | None:
        if not self.config.guide_weight:
            return None
        if not self.config.guide_classifier:
            raise ConfigError("guide_weight is set but guide_classifier is not: name a checkpoint")
        return ClassifierGuide(
            self.config.guide_classifier,
            self.device,
            self.config.precision,
            self.rngs["augment"],
            blur_sigma=self.config.guide_blur,
        )

    # -- data -------------------------------------------------------------------------------
    def prepare_data(self, split: Split) -> None:
        self.images = torch.from_numpy(split.images)  # uint8 (N, 48, 48)
        labels = torch.from_numpy(split.labels)
        self.by_class = [torch.nonzero(labels == k).squeeze(1) for k in range(len(EMOTIONS))]
        if any(len(indices) == 0 for indices in self.by_class):
            empty = [EMOTIONS[k] for k, idx in enumerate(self.by_class) if len(idx) == 0]
            raise ConfigError(f"GAN training data has no images of {empty}")

    def sample_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Real faces ``(B, 1, 48, 48)`` and labels ``(B,)``: classes drawn uniformly (rare
        ones as often as common ones), then a face of each drawn class."""
        size, rng = self.config.batch_size, self.rngs["data"]
        labels = torch.randint(0, len(EMOTIONS), (size,), generator=rng)
        picks = torch.rand(size, generator=rng)
        index = torch.stack(
            [
                self.by_class[k][int(u * len(self.by_class[k]))]
                for k, u in zip(labels.tolist(), picks.tolist(), strict=True)
            ]
        )
        images = from_uint8(self.images[index])  # (B, 1, 48, 48)
        if self.config.mirror:
            flipped = torch.rand(size, generator=rng) < 0.5
            images[flipped] = images[flipped].flip(-1)
        return images.to(self.device), labels.to(self.device)

    def latent(self, size: int) -> torch.Tensor:
        return torch.randn(size, self.config.z_dim, generator=self.rngs["latent"]).to(self.device)

    # -- one step ---------------------------------------------------------------------------
    def train_step(self) -> dict[str, float]:
        real, labels = self.sample_batch()
        self.opt_D.zero_grad(set_to_none=True)
        d_phase = self.loss.discriminator_phase(real, labels, self.latent(len(labels)))
        loss_d, stats = d_phase.loss, dict[str, float]()
        if self.config.r1_gamma and self.step % self.config.r1_every == 0:
            penalty = self.loss.r1_penalty(real, labels)
            loss_d = loss_d + self.config.r1_gamma / 2 * self.config.r1_every * penalty
            stats["r1"] = float(penalty.detach())
        loss_d.backward()
        self.opt_D.step()
        if self.config.augment_p is None:
            self.strength.update(d_phase.real_scores)

        self.opt_G.zero_grad(set_to_none=True)
        g_phase = self.loss.generator_phase(labels, self.latent(len(labels)))
        g_phase.loss.backward()
        self.opt_G.step()
        self.update_ema()
        return {
            "loss_d": float(d_phase.loss.detach()),
            "loss_g": float(g_phase.loss.detach()),
            "real_score": float(d_phase.real_scores.mean()),
            **stats,
        }

    @torch.no_grad()
    def update_ema(self) -> None:
        decay = self.config.ema_decay if self.step >= self.config.ema_start else 0.0
        for average, current in zip(self.G_ema.parameters(), self.G.parameters(), strict=True):
            average.lerp_(current, 1 - decay)
        for average, current in zip(self.G_ema.buffers(), self.G.buffers(), strict=True):
            average.copy_(current)

    # -- the loop ---------------------------------------------------------------------------
    def fit(self, split: Split, resume: bool = False) -> dict[str, float]:
        self.prepare_data(split)
        if resume:
            self.load_checkpoint()
            self.seconds_before = rewind_history(self.out / "history.jsonl", self.step)
            self.log(f"resumed at step {self.step} after {self.seconds_before / 60:.1f} min")
        else:
            self.out.mkdir(parents=True, exist_ok=True)
            (self.out / "history.jsonl").write_text("")
        # on resume too: a run whose budget (steps, time limit) was raised records the new one
        write_yaml(self.config.to_dict(), self.out / "config.yaml")
        self.log(
            f"GAN: G {count(self.G) / 1e6:.2f} M, D {count(self.D) / 1e6:.2f} M parameters on "
            f"{describe_device(self.device)}, "
            f"{resolve_precision(self.config.precision, self.device)}; "
            f"Training {len(split.labels)}"
        )
        started = window_start = time.perf_counter()
        window: list[dict[str, float]] = []
        limit = self.config.time_limit_minutes
        while self.step < self.config.steps:
            stats = self.train_step()
            if not all(math.isfinite(v) for v in stats.values()):
                self.roll_back(stats)
                continue
            self.step += 1
            window.append(stats)
            if self.step % self.config.log_every == 0:
                rate = len(window) * self.config.batch_size / (time.perf_counter() - window_start)
                self.write_log(window, rate, started)
                window, window_start = [], time.perf_counter()
            if self.step % self.config.sample_every == 0:
                save_grid(self.G_ema, self.grid_z, self.out / "samples" / f"{self.step:06d}.png")
            if self.step % self.config.checkpoint_every == 0:
                self.save_checkpoint()
            if self.config.snapshot_every and self.step % self.config.snapshot_every == 0:
                self.save_snapshot()
            if limit and self.seconds_before + time.perf_counter() - started > 60 * limit:
                self.log(f"time limit of {limit} min reached at step {self.step}")
                break
        self.save_checkpoint(final=True)
        save_grid(self.exported, self.grid_z, self.out / "samples.png")  # the saved generator
        seconds = self.seconds_before + time.perf_counter() - started
        record = {"device": describe_device(self.device), "wall_seconds": round(seconds, 1)}
        write_json_atomic(record | {"steps": self.step}, self.out / "run.json")  # all sessions
        return {"steps": self.step, "seconds": seconds}

    def write_log(self, window: list[dict[str, float]], rate: float, started: float) -> None:
        keys = dict.fromkeys(key for stats in window for key in stats)  # r1: some steps only
        means = {key: float(np.mean([w[key] for w in window if key in w])) for key in keys}
        elapsed = self.seconds_before + time.perf_counter() - started
        row = {
            "step": self.step,
            **{f"gan/{k}": round(v, 4) for k, v in means.items()},
            "gan/augment_p": round(self.strength.p, 4),
            "images_per_s": round(rate, 1),
            "seconds": round(elapsed, 1),
        }
        with open(self.out / "history.jsonl", "a") as handle:
            handle.write(json.dumps(row) + "\n")
        eta = (self.config.steps - self.step) * self.config.batch_size / max(rate, 1e-9)
        self.log(
            f"step {self.step:6d}/{self.config.steps}  D {means['loss_d']:.3f}  "
            f"G {means['loss_g']:.3f}  D(real) {means['real_score']:+.2f}  "
            f"p {self.strength.p:.2f}  {rate:.0f} img/s  {elapsed / 60:.1f} min, "
            f"~{eta / 60:.0f} min left"
        )
        sys.stdout.flush()

    # -- checkpoints ------------------------------------------------------------------------
    def save_checkpoint(self, final: bool = False) -> None:
        """Weights, optimiser and RNG states; the generator for sampling gets its standing
        statistics only at the end (they cost seconds, too dear for every checkpoint)."""
        header = {"step": self.step, "config": self.config.to_dict()}
        save_gan_weights(self.out / "gan.safetensors", self.G, self.G_ema, self.D, header)
        state = {
            "step": self.step,
            "rollbacks": self.rollbacks,
            "opt_G": self.opt_G.state_dict(),
            "opt_D": self.opt_D.state_dict(),
            "augment_p": self.strength.state_dict()["p"],
            "rngs": {name: rng.get_state() for name, rng in self.rngs.items()},
        }
        atomic_write(self.out / "gan-state.pt", lambda tmp: torch.save(state, tmp))
        standing = self.config.standing_stats_batches if final else 0
        self.exported = save_generator(
            self.out / "generator.safetensors", self.G_ema, self.config, self.step, standing
        )

    def save_snapshot(self) -> Path:
        """The averaged generator as it is now, kept beside the others in ``snapshots/``."""
        path = self.out / SNAPSHOT_DIR / f"generator-{self.step:06d}.safetensors"
        path.parent.mkdir(parents=True, exist_ok=True)
        save_generator(path, self.G_ema, self.config, self.step, self.config.standing_stats_batches)
        return path

    def load_checkpoint(self) -> None:
        if not (self.out / "gan-state.pt").exists():
            raise CheckpointError(f"{self.out}: no GAN checkpoint to resume from")
        step = load_gan_weights(self.out / "gan.safetensors", self.G, self.G_ema, self.D)
        keys = ("opt_G", "opt_D", "rngs", "augment_p", "step")
        state = load_state_file(self.out / "gan-state.pt", keys, "GAN state file")
        try:
            self.opt_G.load_state_dict(state["opt_G"])
            self.opt_D.load_state_dict(state["opt_D"])
            for name, rng in self.rngs.items():
                rng.set_state(state["rngs"][name])
            self.strength.load_state_dict({"p": state["augment_p"]})
        except (OSError, RuntimeError, KeyError, ValueError) as exc:
            raise CheckpointError(f"{self.out}/gan-state.pt: unreadable ({exc})") from None
        if state["step"] != step:
            raise CheckpointError(f"{self.out}: gan.safetensors and gan-state.pt disagree")
        self.step = step
        self.rollbacks = max(self.rollbacks, int(state.get("rollbacks", 0)))

    def roll_back(self, stats: dict[str, float]) -> None:
        self.rollbacks += 1
        if self.rollbacks > self.config.max_rollbacks or not (self.out / "gan-state.pt").exists():
            raise DivergenceError(
                f"GAN diverged at step {self.step} (losses {stats}) after {self.rollbacks - 1} "
                f"roll-back(s); try a lower lr_d/lr_g or precision: fp32"
            )
        self.load_checkpoint()
        rewind_history(self.out / "history.jsonl", self.step)
        for rng in self.rngs.values():
            rng.manual_seed(int(torch.randint(0, 2**31, (1,))) + self.rollbacks)
        self.log(f"non-finite loss: rolled back to step {self.step} ({self.rollbacks})")


def rewind_history(path: Path, step: int) -> float:
    """Drop history rows logged after the checkpoint ``step``; the training seconds up to it.

    Rows past the checkpoint were trained again after a crash; keeping them would log those
    steps twice. The time limit counts the whole run, so resumed training gets what is left.
    """
    kept = [row for row in read_jsonl(path) if row["step"] <= step]
    path.write_text("".join(json.dumps(row) + "\n" for row in kept))
    return float(kept[-1]["seconds"]) if kept else 0.0


def count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def resume_config(out: Path) -> GanConfig:
    if not (out / "config.yaml").exists():
        raise ConfigError(f"{out}: no GAN run to resume (config.yaml missing)")
    return GanConfig.from_dict(read_yaml(out / "config.yaml"))
