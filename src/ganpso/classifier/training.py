"""Classifier training: one epoch, one evaluation, and a whole resumable run.

The run follows the protocol: weights are fitted on Training, the best epoch is chosen (and
early stopping decided) on PublicTest, and PrivateTest is never read here.

Run folder written by ``fit``::

    config.yaml          resolved config, written before any compute
    history.jsonl        one line per epoch (train/loss, val/accuracy, val/macro_f1, lr, ...)
    best.safetensors     weights of the best PublicTest epoch, with their description
    state.pt             everything needed to resume (tensors and plain values only)
    curves.png           training curves
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.optim.swa_utils import AveragedModel
from tqdm import tqdm

from ganpso.checkpoint import load_state_file
from ganpso.classifier.augment import augment_batch, cut_mix_batch, eval_views, mix_batch
from ganpso.classifier.averaging import ema_update
from ganpso.classifier.checkpoint import Preprocessing, load_classifier, save_classifier
from ganpso.classifier.config import TrainConfig
from ganpso.classifier.fusion import fold_batch_norm
from ganpso.classifier.losses import ImbalanceLoss, build_loss, class_weights, reweighting
from ganpso.classifier.models import build_model, count_parameters
from ganpso.config import read_yaml, validate, write_yaml
from ganpso.data import FerDataset, Split
from ganpso.device import autocast, describe_device, resolve_device, resolve_precision
from ganpso.emotions import EMOTIONS, NUM_CLASSES
from ganpso.errors import ConfigError
from ganpso.files import atomic_write
from ganpso.metrics import classification_metrics, plot_training_curves
from ganpso.metrics.fitness import measures_of

Log = Callable[[str], None]


@dataclass(frozen=True)
class FitResult:
    run_dir: Path
    best_epoch: int
    best_score: float
    epochs_run: int
    seconds: float
    history: list[dict[str, float]]


def epoch_order(labels: torch.Tensor, sampling: str, generator: torch.Generator) -> torch.Tensor:
    """Indices for one epoch: a permutation, or a class-balanced draw with replacement."""
    if sampling == "none":
        return torch.randperm(len(labels), generator=generator)
    counts = torch.bincount(labels, minlength=NUM_CLASSES).float()
    sample_weights = 1.0 / counts[labels]
    return torch.multinomial(sample_weights, len(labels), replacement=True, generator=generator)


def train_one_epoch(
    model: nn.Module,
    split: Split,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    config: TrainConfig,
    device: torch.device,
    generator: torch.Generator,
    loss_weights: torch.Tensor | None = None,
    progress: bool = False,
    ema: AveragedModel | None = None,
    loss_function: ImbalanceLoss | None = None,
) -> dict[str, float]:
    """One pass over Training; returns ``train/loss`` and ``train/accuracy``.

    ``loss_weights``: this epoch's class weights; ``loss_function``: the recipe's loss (built
    from ``split``'s class counts when not given).
    """
    model.train()
    images = torch.from_numpy(split.images)  # (N, 48, 48) uint8, stays on the CPU
    labels = torch.from_numpy(split.labels)
    if loss_function is None:
        loss_function = build_loss(config, labels)
    sample_weights = None if split.weights is None else torch.from_numpy(split.weights)
    order = epoch_order(labels, config.sampling, generator)
    weights = loss_weights.to(device) if loss_weights is not None else None
    total_loss, correct, seen = 0.0, 0, 0
    batches = range(0, len(order), config.batch_size)
    for start in tqdm(batches, desc="train", leave=False, disable=not progress):
        index = order[start : start + config.batch_size]
        # augmenting on the CPU keeps one generator and the same draws on every device
        batch = augment_batch(images[index], config.augment, generator).to(device)
        target = labels[index].to(device)
        partner, lam = None, 1.0
        if config.mixup_alpha > 0:
            batch, partner, lam = mix_batch(batch, config.mixup_alpha, generator)
        elif config.cutmix_alpha > 0:
            batch, partner, lam = cut_mix_batch(batch, config.cutmix_alpha, generator)
        if config.channels_last:
            batch = batch.contiguous(memory_format=torch.channels_last)
        with autocast(device, config.precision):
            logits = model(batch).float()
        image_weights = None if sample_weights is None else sample_weights[index].to(device)
        loss = loss_function(logits, target, weights, image_weights)
        if partner is not None:  # the partner's target in its share; the image keeps its weight
            partner_loss = loss_function(logits, target[partner], weights, image_weights)
            loss = lam * loss + (1 - lam) * partner_loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        if ema is not None:
            ema.update_parameters(model)
        total_loss += loss.item() * len(index)
        correct += int((logits.argmax(1) == target).sum())
        seen += len(index)
    return {"train/loss": total_loss / seen, "train/accuracy": correct / seen}


@torch.no_grad()
def predict_proba(
    model: nn.Module,
    images: np.ndarray,
    *,
    crop: int,
    tta: bool,
    device: torch.device,
    precision: str = "auto",
    channels_last: bool = True,
    batch_size: int = 512,
    offsets: list[tuple[int, int]] | None = None,
) -> np.ndarray:
    """Class probabilities ``(N, K)`` for uint8 faces ``(N, 48, 48)``, averaged over views
    (``eval_views``: ``tta``'s crops, or the crops at ``offsets``, each with its mirror)."""
    model.eval()
    folded = fold_batch_norm(model)  # the same logits without a pass over every activation
    if channels_last:
        folded = folded.to(memory_format=torch.channels_last)
    chunks = []
    for start in range(0, len(images), batch_size):
        batch = torch.from_numpy(images[start : start + batch_size]).to(device)
        probs = 0.0
        views = eval_views(batch, crop, tta, offsets)
        for view in views:
            if channels_last:
                view = view.contiguous(memory_format=torch.channels_last)
            with autocast(device, precision):
                probs = probs + F.softmax(folded(view).float(), dim=1)
        chunks.append((probs / len(views)).cpu())
    return torch.cat(chunks).numpy()


def evaluate(
    model: nn.Module, split: Split, config: TrainConfig, device: torch.device, tta: bool = False
) -> dict[str, float]:
    """PublicTest scores: ``val/loss``, ``val/accuracy``, ``val/macro_f1`` (model selection)
    and ``val/macro_precision``, ``val/macro_recall``, ``val/macro_g_measure``."""
    probs = predict_proba(
        model,
        split.images,
        crop=config.augment.crop,
        tta=tta,
        device=device,
        precision=config.precision,
        channels_last=config.channels_last,
        batch_size=config.eval_batch_size,
    )
    picked = probs[np.arange(len(split.labels)), split.labels]
    scores = classification_metrics(split.labels, probs.argmax(1), EMOTIONS)
    measures = measures_of(scores)  # the mission's five: what a search's fitness weighs
    return {
        "val/loss": float(-np.log(np.clip(picked, 1e-12, None)).mean()),
        **{f"val/{name}": value for name, value in measures.items()},
    }


@dataclass
class TrainingState:
    """Everything a resumed run restores: the networks' and optimiser's state, RNGs, history."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    generator: torch.Generator  # augmentation and epoch order; dropout uses torch's global one
    ema: AveragedModel | None = None  # the weights evaluated and kept, when the recipe has EMA
    history: list[dict[str, float]] = field(default_factory=list)
    best_score: float = -1.0
    best_epoch: int = -1
    next_epoch: int = 0
    seconds: float = 0.0  # training time before this process, for a resumed run's total

    @property
    def kept_model(self) -> nn.Module:
        """What is evaluated on PublicTest and saved: the EMA weights, else the trained ones."""
        return self.model if self.ema is None else self.ema.module


def fit(
    config: TrainConfig,
    dataset: FerDataset,
    run_dir: str | Path,
    *,
    resume: bool = False,
    log: Log = print,
    progress: bool = False,
) -> FitResult:
    """Train ``config.model`` on Training, keeping the best PublicTest epoch in ``run_dir``.

    Training is used as given: GAN faces that ``config.synthetic`` asks for are added before, by
    ``ganpso.pipeline.training.train_classifier``.

    Example:
        >>> result = fit(TrainConfig(epochs=2), dataset, "runs/baseline")  # doctest: +SKIP
        >>> result.best_score  # PublicTest accuracy (or macro-F1) of the kept epoch
    """
    validate(config)  # a config built in Python gets the checks a YAML one gets
    run_dir = Path(run_dir)
    prepare_run_dir(config, run_dir, resume)
    if config.num_threads:
        torch.set_num_threads(config.num_threads)
    device = resolve_device(config.device)
    train, val = dataset["Training"], dataset["PublicTest"]
    state = build_state(config, len(train), device)
    if resume and (run_dir / STATE_FILE).exists():
        restore_state(state, load_state(run_dir / STATE_FILE))
        log(f"resumed {run_dir} after epoch {state.next_epoch}/{config.epochs}")
    loss_weights = class_weights(torch.from_numpy(train.labels), config.class_weighting)
    loss_function = build_loss(config, torch.from_numpy(train.labels))
    log(
        f"{config.model.name}: {count_parameters(state.model) / 1e6:.2f} M parameters on "
        f"{describe_device(device)}, {resolve_precision(config.precision, device)}; "
        f"Training {len(train)}, PublicTest {len(val)}"
    )
    started = time.perf_counter() - state.seconds
    for epoch in range(state.next_epoch, config.epochs):
        if stopped_early(state.history, state.best_epoch, config.early_stopping_patience):
            break
        epoch_start = time.perf_counter()
        row: dict[str, float] = {"epoch": epoch + 1, "lr": state.optimizer.param_groups[0]["lr"]}
        weights_now = loss_weights if reweighting(config, epoch) else None
        row |= train_one_epoch(
            state.model, train, state.optimizer, state.scheduler, config, device,
            state.generator, weights_now, progress, state.ema, loss_function,
        )  # fmt: skip
        row |= evaluate(state.kept_model, val, config, device)
        row["seconds"] = time.perf_counter() - epoch_start
        state.history.append(row)
        keep_if_best(state, row, config, run_dir)
        state.next_epoch, state.seconds = epoch + 1, time.perf_counter() - started
        write_jsonl(run_dir / "history.jsonl", state.history)
        save_state(run_dir / STATE_FILE, state)
        log(epoch_line(row, config.epochs, state.best_epoch))
    plot_training_curves(state.history, run_dir / "curves.png")
    return FitResult(
        run_dir, state.best_epoch, state.best_score, len(state.history),
        time.perf_counter() - started, state.history,
    )  # fmt: skip


def build_state(config: TrainConfig, train_size: int, device: torch.device) -> TrainingState:
    """A fresh model, SGD with Nesterov momentum and a one-cycle schedule, seeded RNGs."""
    torch.manual_seed(config.seed)  # dropout draws from torch's global generator
    generator = torch.Generator().manual_seed(config.seed)
    model = build_model(config.model)
    if config.init:
        load_initial_weights(model, config)
    model = model.to(device)
    if config.channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(
        model.parameters(),
        lr=config.lr,
        momentum=config.momentum,
        nesterov=True,
        weight_decay=config.weight_decay,
    )
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer,
        max_lr=config.lr,
        total_steps=config.epochs * math.ceil(train_size / config.batch_size),
        pct_start=config.warmup_fraction,
    )
    ema = None
    if config.ema_decay is not None:
        # buffers too: BatchNorm's running statistics must belong to the averaged weights
        ema = AveragedModel(model, multi_avg_fn=ema_update(config.ema_decay), use_buffers=True)
    return TrainingState(model, optimizer, scheduler, generator, ema)


def load_initial_weights(model: nn.Module, config: TrainConfig) -> None:
    """Start from ``config.init``'s weights (fine-tuning); its model must be ours."""
    start = load_classifier(Path(config.init or ""))
    if start.model_config != config.model or start.classes != EMOTIONS:
        raise ConfigError(
            f"{config.init}: init checkpoint has model {asdict(start.model_config)} and classes "
            f"{list(start.classes)}; this training builds {asdict(config.model)}"
        )
    model.load_state_dict(start.model.state_dict())


def keep_if_best(
    state: TrainingState, row: dict[str, float], config: TrainConfig, run_dir: Path
) -> None:
    """Save the weights when this epoch beats every earlier one on the selection metric."""
    score = row[f"val/{config.selection_metric}"]
    if score <= state.best_score:
        return
    state.best_score, state.best_epoch = score, int(row["epoch"])
    save_classifier(
        run_dir / "best.safetensors",
        state.kept_model,
        config.model,
        EMOTIONS,
        Preprocessing(crop=config.augment.crop),
        extra={"epoch": state.best_epoch, f"val/{config.selection_metric}": score},
    )


def epoch_line(row: dict[str, float], epochs: int, best_epoch: int) -> str:
    return (
        f"epoch {int(row['epoch']):3d}/{epochs}  loss {row['train/loss']:.4f}  "
        f"train acc {row['train/accuracy']:.4f}  val acc {row['val/accuracy']:.4f}  "
        f"val macro-F1 {row['val/macro_f1']:.4f}  {row['seconds']:.0f}s"
        + ("  *best" if best_epoch == row["epoch"] else "")
    )


def stopped_early(history: list[dict[str, float]], best_epoch: int, patience: int | None) -> bool:
    return patience is not None and bool(history) and history[-1]["epoch"] - best_epoch >= patience


def prepare_run_dir(config: TrainConfig, run_dir: Path, resume: bool) -> None:
    """Write the resolved config first; a resumed run must have the same config."""
    config_path = run_dir / "config.yaml"
    if resume and config_path.exists():
        saved = TrainConfig.from_dict(read_yaml(config_path))  # new fields take their defaults
        if saved != config:
            raise ConfigError(
                f"{config_path}: differs from the requested config; "
                "resume with the run's own config"
            )
        return
    if (run_dir / "history.jsonl").exists() and not resume:
        raise ConfigError(
            f"{run_dir}: already holds a training run; pass --resume or choose another --out"
        )
    run_dir.mkdir(parents=True, exist_ok=True)
    write_yaml(config.to_dict(), config_path)


STATE_FILE = "state.pt"
STATE_KEYS = (
    "model", "optimizer", "scheduler", "generator", "torch_rng", "history",
    "best_score", "best_epoch", "epoch", "seconds", "ema",
)  # fmt: skip


def save_state(path: Path, state: TrainingState) -> None:
    """Tensors and plain values only, so that ``load_state`` needs no unpickling of code."""
    payload = {
        "model": state.model.state_dict(),
        "optimizer": state.optimizer.state_dict(),
        "scheduler": state.scheduler.state_dict(),
        "generator": state.generator.get_state(),
        "torch_rng": torch.get_rng_state(),
        "history": json.dumps(state.history),
        "best_score": state.best_score,
        "best_epoch": state.best_epoch,
        "epoch": state.next_epoch - 1,  # the last finished epoch, 0-based
        "seconds": state.seconds,
        "ema": {} if state.ema is None else state.ema.state_dict(),
    }
    atomic_write(path, lambda tmp: torch.save(payload, tmp))


def load_state(path: Path) -> dict[str, Any]:
    """A state file's contents, checked for every key ``restore_state`` reads."""
    return load_state_file(path, STATE_KEYS, "classifier state file")


def restore_state(state: TrainingState, payload: dict[str, Any]) -> None:
    state.model.load_state_dict(payload["model"])
    state.optimizer.load_state_dict(payload["optimizer"])
    state.scheduler.load_state_dict(payload["scheduler"])
    state.generator.set_state(payload["generator"])
    torch.set_rng_state(payload["torch_rng"])
    state.history = json.loads(payload["history"])
    state.best_score, state.best_epoch = payload["best_score"], payload["best_epoch"]
    state.next_epoch, state.seconds = payload["epoch"] + 1, payload["seconds"]
    if state.ema is not None:
        state.ema.load_state_dict(payload["ema"])


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    """Rewrite the whole file, so a resumed run never repeats or loses a line."""
    text = "".join(json.dumps(row) + "\n" for row in rows)
    atomic_write(path, lambda tmp: Path(tmp).write_text(text))
