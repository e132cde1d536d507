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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from ganpso.classifier.augment import augment_batch, eval_views
from ganpso.classifier.checkpoint import Preprocessing, atomic_write, save_classifier
from ganpso.classifier.models import build_model, count_parameters
from ganpso.config import TrainConfig, read_yaml, write_yaml
from ganpso.data import FerDataset, Split
from ganpso.device import autocast, describe_device, resolve_device
from ganpso.emotions import EMOTIONS, NUM_CLASSES
from ganpso.errors import CheckpointError, ConfigError
from ganpso.metrics import classification_metrics, plot_training_curves

Log = Callable[[str], None]


@dataclass(frozen=True)
class FitResult:
    run_dir: Path
    best_epoch: int
    best_score: float
    epochs_run: int
    seconds: float
    history: list[dict[str, float]]


def class_weights(labels: torch.Tensor, mode: str) -> torch.Tensor | None:
    """Loss weights per class from Training counts: ``inverse`` = N / (K n_c), or its sqrt."""
    if mode == "none":
        return None
    counts = torch.bincount(labels, minlength=NUM_CLASSES).float().clamp(min=1)
    weights = counts.sum() / (NUM_CLASSES * counts)
    if mode == "sqrt_inverse":
        weights = weights.sqrt()
    return weights / (weights * counts).sum() * counts.sum()  # keeps the mean loss scale


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
) -> dict[str, float]:
    """One pass over Training; returns ``train/loss`` and ``train/accuracy``."""
    model.train()
    images = torch.from_numpy(split.images)  # (N, 48, 48) uint8, stays on the CPU
    labels = torch.from_numpy(split.labels)
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
        if config.channels_last:
            batch = batch.contiguous(memory_format=torch.channels_last)
        with autocast(device, config.precision):
            logits = model(batch)
        loss = F.cross_entropy(
            logits.float(),
            target,
            weight=weights,
            label_smoothing=config.label_smoothing,
            reduction="mean" if sample_weights is None else "none",
        )
        if sample_weights is not None:
            loss = (loss * sample_weights[index].to(device)).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
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
    precision: str = "bf16",
    channels_last: bool = True,
    batch_size: int = 512,
) -> np.ndarray:
    """Class probabilities ``(N, K)`` for uint8 faces ``(N, 48, 48)``, averaged over views."""
    model.eval()
    chunks = []
    for start in range(0, len(images), batch_size):
        batch = torch.from_numpy(images[start : start + batch_size]).to(device)
        probs = 0.0
        views = eval_views(batch, crop, tta)
        for view in views:
            if channels_last:
                view = view.contiguous(memory_format=torch.channels_last)
            with autocast(device, precision):
                probs = probs + F.softmax(model(view).float(), dim=1)
        chunks.append((probs / len(views)).cpu())
    return torch.cat(chunks).numpy()


def evaluate(
    model: nn.Module, split: Split, config: TrainConfig, device: torch.device, tta: bool = False
) -> dict[str, float]:
    """PublicTest scores for model selection: ``val/loss``, ``val/accuracy``, ``val/macro_f1``."""
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
    return {
        "val/loss": float(-np.log(np.clip(picked, 1e-12, None)).mean()),
        "val/accuracy": scores["accuracy"],
        "val/macro_f1": scores["macro"]["f1"],
    }


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

    Example:
        >>> result = fit(TrainConfig(epochs=2), dataset, "runs/baseline")  # doctest: +SKIP
        >>> result.best_score  # PublicTest accuracy (or macro-F1) of the kept epoch
    """
    run_dir = Path(run_dir)
    state_path = run_dir / "state.pt"
    prepare_run_dir(config, run_dir, resume)
    if config.num_threads:
        torch.set_num_threads(config.num_threads)
    device = resolve_device(config.device)
    torch.manual_seed(config.seed)  # dropout draws from torch's global generator
    generator = torch.Generator().manual_seed(config.seed)

    train, val = dataset["Training"], dataset["PublicTest"]
    if config.synthetic.generator:
        from ganpso.pipeline.balance import add_synthetic  # the pipeline builds on this module

        train = add_synthetic(train, config.synthetic, device, log)
    model = build_model(config.model).to(device)
    if config.channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(
        model.parameters(),
        lr=config.lr,
        momentum=config.momentum,
        nesterov=True,
        weight_decay=config.weight_decay,
    )
    steps_per_epoch = math.ceil(len(train) / config.batch_size)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer,
        max_lr=config.lr,
        total_steps=config.epochs * steps_per_epoch,
        pct_start=config.warmup_fraction,
    )
    loss_weights = class_weights(torch.from_numpy(train.labels), config.class_weighting)
    preprocessing = Preprocessing(crop=config.augment.crop)

    history: list[dict[str, float]] = []
    best_score, best_epoch, start_epoch, seconds_before = -1.0, -1, 0, 0.0
    if resume and state_path.exists():
        state = load_state(state_path)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        generator.set_state(state["generator"])
        torch.set_rng_state(state["torch_rng"])
        history = json.loads(state["history"])
        best_score, best_epoch = state["best_score"], state["best_epoch"]
        start_epoch, seconds_before = state["epoch"] + 1, state["seconds"]
        log(f"resumed {run_dir} after epoch {state['epoch'] + 1}/{config.epochs}")

    log(
        f"{config.model.name}: {count_parameters(model) / 1e6:.2f} M parameters on "
        f"{describe_device(device)}, {config.precision}; "
        f"Training {len(train)}, PublicTest {len(val)}"
    )
    started = time.perf_counter() - seconds_before
    for epoch in range(start_epoch, config.epochs):
        if stopped_early(history, best_epoch, config.early_stopping_patience):
            break
        epoch_start = time.perf_counter()
        row: dict[str, float] = {"epoch": epoch + 1, "lr": optimizer.param_groups[0]["lr"]}
        row |= train_one_epoch(
            model, train, optimizer, scheduler, config, device, generator, loss_weights, progress
        )
        row |= evaluate(model, val, config, device)
        row["seconds"] = time.perf_counter() - epoch_start
        history.append(row)
        score = row[f"val/{config.selection_metric}"]
        if score > best_score:
            best_score, best_epoch = score, epoch + 1
            save_classifier(
                run_dir / "best.safetensors",
                model,
                config.model,
                EMOTIONS,
                preprocessing,
                extra={"epoch": best_epoch, f"val/{config.selection_metric}": score},
            )
        write_jsonl(run_dir / "history.jsonl", history)
        save_state(
            state_path,
            model,
            optimizer,
            scheduler,
            generator,
            history,
            best_score,
            best_epoch,
            epoch,
            time.perf_counter() - started,
        )
        log(
            f"epoch {epoch + 1:3d}/{config.epochs}  loss {row['train/loss']:.4f}  "
            f"train acc {row['train/accuracy']:.4f}  val acc {row['val/accuracy']:.4f}  "
            f"val macro-F1 {row['val/macro_f1']:.4f}  {row['seconds']:.0f}s"
            + ("  *best" if best_epoch == epoch + 1 else "")
        )
    plot_training_curves(history, run_dir / "curves.png")
    return FitResult(
        run_dir, best_epoch, best_score, len(history), time.perf_counter() - started, history
    )


def stopped_early(history: list[dict[str, float]], best_epoch: int, patience: int | None) -> bool:
    return patience is not None and bool(history) and history[-1]["epoch"] - best_epoch >= patience


def prepare_run_dir(config: TrainConfig, run_dir: Path, resume: bool) -> None:
    """Write the resolved config first; a resumed run must have the same config."""
    config_path = run_dir / "config.yaml"
    if resume and config_path.exists():
        saved = read_yaml(config_path)
        if saved != config.to_dict():
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


def save_state(
    path: Path,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    generator: torch.Generator,
    history: list[dict[str, float]],
    best_score: float,
    best_epoch: int,
    epoch: int,
    seconds: float,
) -> None:
    state = {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "generator": generator.get_state(),
        "torch_rng": torch.get_rng_state(),
        "history": json.dumps(history),
        "best_score": best_score,
        "best_epoch": best_epoch,
        "epoch": epoch,
        "seconds": seconds,
    }
    atomic_write(path, lambda tmp: torch.save(state, tmp))


def load_state(path: Path) -> dict[str, Any]:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # any unreadable or tampered file
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"{path}: cannot resume from this state file ({first})") from None


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    """Rewrite the whole file, so a resumed run never repeats or loses a line."""
    text = "".join(json.dumps(row) + "\n" for row in rows)
    atomic_write(path, lambda tmp: Path(tmp).write_text(text))
