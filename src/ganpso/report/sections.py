"""The report's sections, each built from the files of a run folder only.

A missing input gives a *not run* note instead of a section, never an error.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from ganpso.config import read_yaml
from ganpso.metrics import plot_confusion_matrix, plot_per_class_bars, read_json
from ganpso.pipeline.folders import PRIVATE_METRICS_FILE, Cell, read_stage_record
from ganpso.report.render import Figure, Section
from ganpso.report.summary import (
    mean_confusion,
    paired_test,
    per_class_means,
    provenance,
    summarise,
)
from ganpso.report.tables import Table, comparison_table, per_class_table

NOT_RUN = "*not run*"
ANCHORS: tuple[tuple[str, str, str], ...] = (
    ("human", "~65 %", "Goodfellow et al. 2013 (FER2013 challenge)"),
    ("mini-Xception", "66 %", "Arriaga et al. 2017"),
    ("VGGNet", "73.28 %", "Khaireddin & Chen 2021"),
    ("Residual Masking Network", "74.14 %", "Pham et al. 2020"),
    ("ensembles", "75–77 %", "various"),
)


def _not_run(title: str, what: str) -> Section:
    return Section(title, [f"{NOT_RUN}: {what}"])


def _seconds(value: Any) -> str:
    return f"{float(value):,.0f} s" if value is not None else "unknown"


def _stage_run(folder: Path, payload: dict[str, Any]) -> dict[str, Any]:
    """Device and wall seconds of a stage: its ``run.json`` first, else the payload's keys."""
    run = read_json(folder / "run.json") if (folder / "run.json").exists() else {}
    stage = read_stage_record(folder)
    if not run and stage is not None:  # a `ganpso run` stage
        run = {"device": stage.get("device"), "wall_seconds": stage.get("seconds")}
    wall = run.get("wall_seconds", payload.get("wall_seconds", payload.get("seconds")))
    device = run.get("device") or payload.get("device") or "unknown"
    return {"device": str(device), "wall_seconds": wall}


def _provenance(folder: Path, payload: dict[str, Any]) -> tuple[str, str]:
    run = _stage_run(folder, payload)
    return run["device"], _seconds(run["wall_seconds"])


def _caption(text: str, device: str, wall: str) -> str:
    return f"{text} (device: {device}; wall time: {wall})"


def _copy_figure(source: Path, out_dir: Path, name: str, caption: str) -> Figure:
    target = out_dir / name
    if source.resolve() != target.resolve():
        shutil.copyfile(source, target)
    return Figure(target, caption)


def comparison_section(groups: dict[str, list[Cell]]) -> Section:
    title = "Comparison on PrivateTest"
    if not groups:
        return _not_run(title, "`compare/` holds no finished cells.")
    text = (
        "Mean ± sample std over seeds; 95 % intervals: percentile bootstrap over the test "
        "images of the seed-averaged metric (1,000 resamples, seed 0). Rows with n = 1 are "
        "evaluated once (no std)."
    )
    rows = summarise([c for group in groups.values() for c in group])
    return Section(title, [text, _legend(groups)], [comparison_table(rows)])


def _legend(groups: dict[str, list[Cell]]) -> str:
    """What each method name stands for, from the cells' own records."""
    titles = [f"`{name}` = {cells[0].run.get('title', name)}" for name, cells in groups.items()]
    return "Methods: " + "; ".join(titles) + "."


def paired_section(groups: dict[str, list[Cell]], treatment: str, control: str) -> Section:
    title = f"Paired test: {treatment} vs {control} (macro-F1)"
    missing = [m for m in (treatment, control) if m not in groups]
    if missing:
        return _not_run(title, f"no cells for {', '.join(f'`{m}`' for m in missing)}.")
    result = paired_test(groups[treatment], groups[control], metric="macro_f1")
    ttest = (
        f"{result.t_statistic:.3f} / {result.p_ttest:.4f}"
        if result.p_ttest is not None
        else f"needs >= 3 matching seeds ({result.n_pairs})"
    )
    table = Table(
        ["A", "B", "mean A", "mean B", "A − B", "95 % CI", "p (bootstrap)", "t / p (seeds)"],
        [
            [
                treatment,
                control,
                f"{result.mean_a:.4f}",
                f"{result.mean_b:.4f}",
                f"{result.difference:+.4f}",
                f"{result.ci95[0]:+.4f} – {result.ci95[1]:+.4f}",
                f"{result.p_bootstrap:.4f}",
                ttest,
            ]
        ],
    )
    text = (
        f"Paired bootstrap over the same test images ({result.n_boot:,} resamples) of the "
        "seed-averaged difference; two-sided p (at least 1 / (resamples + 1)). The t-test pairs "
        "runs by seed."
    )
    return Section(title, [text], [table])


def _per_run(wall: float | None) -> str:
    return _seconds(wall) + " per run"


def _method_provenance(groups: dict[str, list[Cell]]) -> str:
    parts = []
    for method, cells in groups.items():
        device, wall = provenance(cells)
        parts.append(f"{method}: {device or 'unknown'}, {_per_run(wall)}")
    return "; ".join(parts)


def per_class_section(groups: dict[str, list[Cell]], out_dir: Path) -> Section:
    title = "Per-class scores"
    if not groups:
        return _not_run(title, "`compare/` holds no finished cells.")
    cells = [c for group in groups.values() for c in group]
    path = out_dir / "per-class-f1.png"
    plot_per_class_bars(per_class_means(cells), "f1", path)
    caption = f"Per-class F1, mean over seeds (devices and wall time: {_method_provenance(groups)})"
    return Section(
        title,
        ["Mean over seeds of per-class precision (P), recall (R) and F1."],
        [per_class_table(cells)],
        [Figure(path, caption)],
    )


def confusion_section(groups: dict[str, list[Cell]], out_dir: Path) -> Section:
    title = "Confusion matrices"
    if not groups:
        return _not_run(title, "`compare/` holds no finished cells.")
    figures = []
    for method, cells in groups.items():
        path = out_dir / f"confusion-{_slug(method)}.png"
        classes = cells[0].metrics.get("classes") or list(cells[0].metrics["per_class"])
        counts = np.rint(mean_confusion(cells)).astype(np.int64)  # mean over seeds, rounded
        plot_confusion_matrix(counts, classes, path, title=f"{method} (mean of {len(cells)})")
        device, wall = provenance(cells)
        text = f"{method}: mean over {len(cells)} run(s)"
        figures.append(Figure(path, _caption(text, device or "unknown", _per_run(wall))))
    return Section(title, ["Counts are means over seeds, rounded."], figures=figures)


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-") or "method"


def gan_section(run_dir: Path, out_dir: Path) -> Section:
    title = "GAN: samples and quality"
    folder = run_dir / "gan"
    if not (folder / "gan-metrics.json").exists() and not (folder / "samples.png").exists():
        return _not_run(title, "`gan/gan-metrics.json` and `gan/samples.png` are absent.")
    metrics_path = folder / "gan-metrics.json"
    metrics = read_json(metrics_path) if metrics_path.exists() else {}
    device, wall = _provenance(folder, metrics)
    section = Section(title)
    if metrics:
        section.paragraphs.append(f"{metrics.get('summary', '')} (device: {device}; {wall})")
        section.tables.append(_gan_table(metrics))
        if "targets_met" in metrics:
            section.tables.append(_gan_targets(metrics))
    else:
        section.paragraphs.append(f"{NOT_RUN}: `gan/gan-metrics.json` is absent.")
    if (folder / "samples.png").exists():
        caption = _caption("Fixed-seed samples, one row per emotion", device, wall)
        section.figures.append(
            _copy_figure(folder / "samples.png", out_dir, "gan-samples.png", caption)
        )
    else:
        section.paragraphs.append(f"{NOT_RUN}: `gan/samples.png` is absent.")
    return section


def _gan_table(metrics: dict[str, Any]) -> Table:
    """Per-class FID / KID (with the real-data floor), CAS recall and diversity, if present."""
    fid_kid = metrics.get("fid_kid", {})
    per_class = dict(fid_kid.get("per_class", {}))
    if "overall" in fid_kid:
        per_class["overall"] = fid_kid["overall"]
    recall = metrics.get("cas", {}).get("per_class_recall", {})
    diversity = metrics.get("diversity_ratio_fake_over_real", {})
    realness = metrics.get("memorisation", {}).get("discriminator", {})
    rows = [
        [
            name,
            _number(scores.get("fid")),
            _number(scores.get("fid_floor")),
            _number(scores.get("kid")),
            _number(scores.get("kid_floor")),
            _number(recall.get(name)),
            _number(diversity.get(name)),
            *([_realness_text(realness.get(name))] if realness else []),
        ]
        for name, scores in per_class.items()
    ]
    headers = ["class", "FID", "FID floor", "KID", "KID floor", "CAS recall", "diversity"]
    if realness:
        headers.append("D r_t: Training / PublicTest")
    return Table(headers, rows)


def _gan_targets(metrics: dict[str, Any]) -> Table:
    """The GAN issue's targets beside what was measured."""
    cas, ratios = metrics["cas"], metrics["disgust_vs_other_classes"]
    spread = f" ± {cas['accuracy_std']:.3f} ({cas['seeds']} seeds)" if "seeds" in cas else ""
    measured = {
        "cas_accuracy_at_least_0.45": f"{cas['accuracy']:.3f}{spread}",
        "disgust_kid_within_2x_of_other_classes_mean": _ratio_text(ratios, "kid_ratio"),
        "disgust_fid_within_2x_of_other_classes_mean": _ratio_text(ratios, "fid_ratio"),
        "near_copy_fraction_at_most_0.01": f"{metrics['memorisation']['near_copy_fraction']:.2%}",
    }
    rows = [
        [name.replace("_", " "), measured.get(name, ""), "met" if met else "**missed**"]
        for name, met in metrics["targets_met"].items()
    ]
    if "fid_ratio_equal_real_size" in ratios:
        equal = _ratio_text(ratios, "fid_ratio_equal_real_size")
        label = "(beside) disgust FID ratio, every class at disgust's real-set size"
        rows.append([label, equal, ""])
    return Table(["target", "measured", "result"], rows)


def _ratio_text(ratios: dict[str, Any], name: str) -> str:
    """``2.32x``, or ``2.32x ± 0.10 (5 draws)`` when averaged over draws of fakes."""
    spread = ratios.get("std") or {}
    if name not in spread:
        return f"{ratios[name]:.2f}x"
    return f"{ratios[name]:.2f}x ± {spread[name]:.2f} ({ratios['draws']} draws)"


def _realness_text(row: dict[str, float] | None) -> str:
    return f"{row['r_t_training']:+.2f} / {row['r_t_publictest']:+.2f}" if row else ""


def _number(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, int | float) else ""


def fitness_words(run_dir: Path) -> str:
    """What the run's search maximised, from its saved config; runs made before the five-measure
    fitness saved none and maximised macro-F1."""
    path = run_dir / "config.yaml"
    search = read_yaml(path).get("search", {}) if path.exists() else {}
    weights = search.get("fitness", {"macro_f1": 1.0})
    if len(weights) == 1:
        return next(iter(weights)).replace("_", "-").replace("macro-f1", "macro-F1")
    if len(set(weights.values())) == 1:
        return f"mean of {', '.join(weights)}"
    return "weighted mean of " + ", ".join(f"{w:g} x {name}" for name, w in weights.items())


def search_section(run_dir: Path, out_dir: Path) -> Section:
    title = "PSO search"
    folder = run_dir / "search"
    if not (folder / "history.json").exists():
        return _not_run(title, "`search/history.json` is absent.")
    meta = read_json(folder / "history.json")
    history = meta["iterations"]
    device, wall = _provenance(folder, meta)
    keys = [k for k in dict.fromkeys(k for row in history for k in row) if k != "values"]
    table = Table(keys, [[_cell_text(row.get(k)) for k in keys] for row in history])
    paragraphs = [f"{len(history)} iterations (device: {device}; {wall})."]
    maximised = fitness_words(run_dir)
    if meta.get("best_settings"):
        best = ", ".join(f"`{k}` = {_cell_text(v)}" for k, v in meta["best_settings"].items())
        value = _cell_text(meta.get("best_value"))
        fitness = f"Best search fitness (PublicTest {maximised} at reduced fidelity)"
        paragraphs.append(f"{fitness} {value}: {best}.")
    section = Section(title, paragraphs, [table])
    if (folder / "rescore.json").exists():
        rescored = read_json(folder / "rescore.json")
        searched = sum(c["settings"] is not None for c in rescored["candidates"])
        best = "best setting" if searched == 1 else f"{searched} best settings"
        base = " and the base recipe" if searched < len(rescored["candidates"]) else ""
        section.paragraphs.append(
            f"Rescoring: the search's {best}{base}, each trained in full (PublicTest "
            f"{maximised} at the kept epoch, second table); the final training is "
            "the best of them, "
            f"`{rescored['chosen']}`."
        )
        section.tables.append(rescore_table(rescored))
    if (folder / "convergence.png").exists():
        caption = _caption("Best and mean fitness per iteration", device, wall)
        figure = _copy_figure(folder / "convergence.png", out_dir, "pso-convergence.png", caption)
        section.figures.append(figure)
    else:
        section.paragraphs.append(f"{NOT_RUN}: `search/convergence.png` is absent.")
    return section


def rescore_table(rescored: dict[str, Any]) -> Table:
    rows = []
    for candidate in rescored["candidates"]:
        settings = candidate["settings"] or {}
        described = ", ".join(f"{k} {_cell_text(v)}" for k, v in settings.items()) or "base recipe"
        full = _cell_text(candidate["full"]) if candidate["error"] is None else "failed"
        chosen = "chosen" if candidate["name"] == rescored["chosen"] else ""
        rows.append([candidate["name"], described, _cell_text(candidate["proxy"]), full, chosen])
    return Table(["candidate", "settings", "search fitness", "full training", ""], rows)


def _cell_text(value: Any) -> str:
    return _number(value) if isinstance(value, float) else "" if value is None else str(value)


def final_section(run_dir: Path) -> Section:
    title = "Final model on PrivateTest"
    path = run_dir / "final" / PRIVATE_METRICS_FILE
    if not path.exists():
        return _not_run(title, f"`final/{PRIVATE_METRICS_FILE}` is absent.")
    metrics = read_json(path)
    cell = Cell("final", None, metrics, run=_stage_run(path.parent, metrics))
    table = comparison_table(summarise([cell]))
    return Section(title, [f"Command: `{metrics.get('command', 'unknown')}`."], [table])


def anchors_section() -> Section:
    rows = [[name, acc, source, "quoted, not run", "—"] for name, acc, source in ANCHORS]
    return Section(
        "Published anchors (*quoted, not run*)",
        ["Accuracy on FER2013 PrivateTest as published; nothing here was run by this project."],
        [Table(["model", "PrivateTest accuracy", "source", "device", "wall time"], rows)],
    )
