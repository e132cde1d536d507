"""The whole method: GAN balancing, the search objective, ``ganpso run`` stages and ``compare``."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from factories import tiny_dataset
from ganpso.classifier.checkpoint import Preprocessing, save_classifier
from ganpso.classifier.config import ModelConfig, SyntheticConfig, TrainConfig
from ganpso.classifier.models import build_model
from ganpso.cli import main
from ganpso.data import FerDataset, Split
from ganpso.emotions import EMOTIONS
from ganpso.errors import ConfigError
from ganpso.gan import Generator, load_generator
from ganpso.gan.checkpoint import save_generator
from ganpso.gan.config import GanConfig
from ganpso.pipeline import objective as objective_module
from ganpso.pipeline.balance import (
    SyntheticPool,
    add_synthetic,
    combine,
    draw_candidates,
    synthetic_counts,
)
from ganpso.pipeline.config import FidelityConfig
from ganpso.pipeline.objective import PipelineObjective, stratified_fraction, with_settings

ARCHIVE = Path(__file__).parents[1] / ".." / "shared" / "data" / "fer2013.zip"
needs_archive = pytest.mark.skipif(not ARCHIVE.exists(), reason="../shared/data/fer2013.zip absent")
SMOKE_RUN = ["run", "--profile", "smoke", "--data", str(ARCHIVE), "--device", "cpu"]


def test_counts_top_up_each_class_to_its_ratio() -> None:
    real = np.array([100, 10, 50, 200, 80, 60, 90])
    counts = synthetic_counts(real, 0.5, {"disgust": 1.0})
    assert counts.tolist() == [0, 190, 50, 0, 20, 40, 10]
    assert synthetic_counts(real, 0.0, {}).sum() == 0


def test_unknown_class_ratio_is_refused() -> None:
    with pytest.raises(Exception, match="unknown classes"):
        synthetic_counts(np.ones(7, int), 0.5, {"contempt": 1.0})


def tiny_generator(path: Path) -> Path:
    torch.manual_seed(0)
    generator = Generator(z_dim=8, width=4).eval()
    config = GanConfig(z_dim=8, g_width=4)
    save_generator(path, generator, config, step=1)
    return path


def test_candidates_do_not_depend_on_how_many_are_drawn(tmp_path: Path) -> None:
    torch.manual_seed(0)
    generator = Generator(z_dim=8, width=4).eval()
    few = draw_candidates(generator, 1, 3, seed=5)
    many = draw_candidates(generator, 1, 700, seed=5)
    assert np.array_equal(few, many[:3])
    assert not np.array_equal(few, draw_candidates(generator, 2, 3, seed=5))


def tiny_classifier(path: Path) -> Path:
    torch.manual_seed(0)
    model = build_model(ModelConfig(width=4))
    save_classifier(path, model, ModelConfig(width=4), EMOTIONS, Preprocessing(crop=40))
    return path


def test_add_synthetic_weights_and_filter(tmp_path: Path) -> None:
    real = tiny_dataset(per_class=4)["Training"]
    config = SyntheticConfig(
        generator=str(tiny_generator(tmp_path / "g.safetensors")),
        ratio=2.0,
        weight=0.25,
        filter_classifier=str(tiny_classifier(tmp_path / "c.safetensors")),
    )
    mixed = add_synthetic(real, config, log=lambda _: None)
    assert len(mixed) == len(real) + 7 * 4  # each class topped up from 4 to 8
    assert mixed.weights is not None
    assert np.all(mixed.weights[: len(real)] == 1) and np.all(mixed.weights[len(real) :] == 0.25)
    assert np.array_equal(np.bincount(mixed.labels), [8] * 7)
    strict = add_synthetic(real, replace(config, filter_confidence=1.01), log=lambda _: None)
    assert len(strict) == len(real)  # nothing passes an impossible filter


def test_pool_select_keeps_order_and_threshold() -> None:
    images = [np.arange(5, dtype=np.uint8)[:, None, None].repeat(48, 1).repeat(48, 2)] * 7
    confidence = [np.array([0.9, 0.1, 0.8, 0.2, 0.7], np.float32)] * 7
    pool = SyntheticPool(images, confidence)
    assert pool.select(0, 2, 0.5)[:, 0, 0].tolist() == [0, 2]
    assert pool.select(0, 10, 0.5)[:, 0, 0].tolist() == [0, 2, 4]
    mixed = combine(
        Split(images[0][:1], np.array([3])), [pool.select(0, 1, 0)] + [images[0][:0]] * 6, 0.5
    )
    assert mixed.labels.tolist() == [3, 0] and mixed.weights.tolist() == [1.0, 0.5]


def test_with_settings_sets_nested_keys() -> None:
    raw = with_settings(
        {"lr": 0.1, "synthetic": {}},
        {"synthetic.class_ratios.disgust": 0.4, "lr": np.float64(0.05)},
    )
    assert raw == {"lr": 0.05, "synthetic": {"class_ratios": {"disgust": 0.4}}}
    assert TrainConfig.from_dict(raw).synthetic.class_ratios == {"disgust": 0.4}


def test_stratified_fraction_keeps_every_class() -> None:
    split = tiny_dataset(per_class=10)["Training"]
    half = stratified_fraction(split, 0.5, seed=0)
    assert np.array_equal(np.bincount(half.labels), [5] * 7)


class NoPrivateTest(FerDataset):
    def __getitem__(self, name: str) -> Split:
        if name == "PrivateTest":
            raise AssertionError("the search objective read PrivateTest")
        return super().__getitem__(name)


def test_objective_scores_publictest_and_never_reads_privatetest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tiny_dataset(per_class=6)
    guarded = NoPrivateTest(data.splits, "synthetic")
    monkeypatch.setattr(objective_module, "load_dataset", lambda _config: guarded)
    pool = SyntheticPool([np.zeros((20, 48, 48), np.uint8)] * 7, [np.ones(20, np.float32)] * 7)
    pool.save(tmp_path / "pool.npz")
    base = TrainConfig(model=ModelConfig(width=4), device="cpu", precision="fp32", batch_size=16)
    objective = PipelineObjective(base, tmp_path / "pool.npz", FidelityConfig(epochs=1, width=4))
    settings = {"synthetic.ratio": 2.0, "synthetic.weight": 0.5, "lr": 0.05}
    first = objective(settings)
    assert 0.0 <= first <= 1.0
    assert objective(settings) == first  # deterministic
    config = TrainConfig.from_dict(with_settings(base.to_dict(), settings))
    assert len(objective.training_split(config)) == 21 + 21  # 3 real per class, topped up to 6


def test_a_fractional_fidelity_trains_part_of_the_particles_own_epochs_at_its_own_width(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tiny_dataset(per_class=6)
    monkeypatch.setattr(objective_module, "load_dataset", lambda _config: data)
    trained: list[TrainConfig] = []

    def fake_fit(config: TrainConfig, *_args: object, **_kwargs: object) -> object:
        trained.append(config)
        row = {f"val/{name}": 0.5 for name in ("accuracy", "macro_precision", "macro_recall")}
        row |= {"val/macro_f1": 0.5, "val/macro_g_measure": 0.5}
        return type("Result", (), {"history": [row]})()

    monkeypatch.setattr(objective_module, "fit", fake_fit)
    pool = SyntheticPool([np.zeros((20, 48, 48), np.uint8)] * 7, [np.ones(20, np.float32)] * 7)
    pool.save(tmp_path / "pool.npz")
    base = TrainConfig(model=ModelConfig(width=4), device="cpu", precision="fp32")
    fidelity = FidelityConfig(epoch_fraction=0.25, width=None, real_fraction=1.0)
    objective = PipelineObjective(base, tmp_path / "pool.npz", fidelity)
    assert objective({"epochs": 39, "model.width": 24}) == pytest.approx(0.5)
    assert objective({"epochs": 2, "model.width": 8}) == pytest.approx(0.5)
    assert [(c.epochs, c.model.width) for c in trained] == [(10, 24), (1, 8)]
    assert FidelityConfig(epochs=3).epochs_for(40) == 3  # a fixed count ignores the particle's


def test_sample_weights_scale_the_loss() -> None:
    from ganpso.classifier.training import train_one_epoch

    split = tiny_dataset(per_class=2)["Training"]
    zero = Split(split.images, split.labels, np.zeros(len(split), np.float32))
    config = TrainConfig(model=ModelConfig(width=4), device="cpu", precision="fp32")
    model = build_model(config.model)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    scheduler = torch.optim.lr_scheduler.ConstantLR(optimizer, 1.0)
    before = [p.detach().clone() for p in model.parameters()]
    stats = train_one_epoch(
        model, zero, optimizer, scheduler, config, torch.device("cpu"), torch.Generator()
    )
    assert stats["train/loss"] == 0.0
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    out = tmp_path_factory.mktemp("smoke") / "run"
    assert main([*SMOKE_RUN, "--out", str(out), "--stop-after", "gan"]) == 0
    first = sorted(p.name for p in out.iterdir() if (p / "stage.json").exists())
    assert main([*SMOKE_RUN, "--out", str(out)]) == 0
    return out, first


def copy_of_smoke_run(smoke_run: tuple[Path, list[str]], tmp_path: Path) -> Path:
    """A private copy, for a test that changes the run; its configs' paths move with it."""
    import shutil

    out = tmp_path / "run"
    shutil.copytree(smoke_run[0], out)
    for config in out.rglob("config.yaml"):
        config.write_text(config.read_text().replace(str(smoke_run[0]), str(out)))
    return out


@needs_archive
def test_smoke_profile_runs_every_stage_and_resumes(smoke_run: tuple[Path, list[str]]) -> None:
    out, first = smoke_run
    assert first == ["classifier", "gan"]
    for path in (
        "classifier/best.safetensors",
        "gan/generator.safetensors",
        "gan/gan-metrics.json",
        "search/convergence.png",
        "search/best-config.yaml",
        "final/metrics-PrivateTest.json",
        "final/predictions-PrivateTest.npz",
        "ensemble/ensemble.json",
        "ensemble/metrics-PublicTest.json",
        "ensemble/predictions-PrivateTest.npz",
        "report/report.md",
        "report/report.html",
    ):
        assert (out / path).exists(), path
    best = TrainConfig.from_yaml(out / "search" / "best-config.yaml")
    rescored = json.loads((out / "search" / "rescore.json").read_text())
    proxy_best, base = rescored["candidates"]
    assert base["name"] == "base" and base["folder"] == str(out / "classifier")  # not retrained
    assert Path(proxy_best["folder"]).parent == out / "search" / "rescore"
    trained = TrainConfig.from_yaml(Path(proxy_best["folder"]) / "config.yaml").synthetic
    assert trained.ratio == 0 or Path(str(trained.generator)).exists()  # the run's own GAN
    (chosen,) = [c for c in rescored["candidates"] if c["name"] == rescored["chosen"]]
    assert chosen["full"] == max(proxy_best["full"], base["full"])
    assert TrainConfig.from_yaml(Path(chosen["folder"]) / "config.yaml") == best
    final_history = (out / "final" / "history.jsonl").read_text()
    assert (Path(chosen["folder"]) / "history.jsonl").read_text() == final_history  # reused
    ensemble = json.loads((out / "ensemble" / "ensemble.json").read_text())
    assert [m["folder"] for m in ensemble["members"]] == [
        row["folder"] for row in sorted(rescored["candidates"], key=lambda row: -row["full"])
    ]
    assert sum(m["weight"] for m in ensemble["members"]) == pytest.approx(1.0)
    assert ensemble["chosen_on"] == "PublicTest"
    stamps = {p: (out / p / "stage.json").stat().st_mtime_ns for p in ("classifier", "final")}
    assert main([*SMOKE_RUN, "--out", str(out)]) == 0
    assert stamps == {p: (out / p / "stage.json").stat().st_mtime_ns for p in stamps}


def run_compare(run: Path, cells: Path, *methods: str) -> int:
    args = ["compare", "--run", str(run), "--methods", *methods, "--seeds", "0"]
    return main([*args, "--out", str(cells)])


@needs_archive
def test_compare_cells_are_kept_and_reused(smoke_run: tuple[Path, list[str]]) -> None:
    out, _ = smoke_run
    cells_dir = out / "compare"
    methods = ["cnn", "ganpso", "oversample", "mini_xception", "ganpso_swarm_ensemble"]
    assert run_compare(out, cells_dir, *methods) == 0
    for method in methods:
        record = json.loads((cells_dir / method / "seed0" / "cell.json").read_text())
        assert record["method"] == method
    swarm = json.loads((cells_dir / "ganpso_swarm_ensemble" / "seed0" / "cell.json").read_text())
    ensemble = json.loads((out / "ensemble" / "ensemble.json").read_text())
    assert swarm["members"] == [
        Path(m["folder"]).name for m in ensemble["members"] if m["weight"] > 0
    ]
    assert swarm["cpu_seconds"] == swarm["wall_seconds"]
    private = cells_dir / "ganpso_swarm_ensemble" / "seed0" / "metrics-PrivateTest.json"
    assert private.read_bytes() == (out / "ensemble" / "metrics-PrivateTest.json").read_bytes()
    data = json.loads((cells_dir / "comparison.json").read_text())
    (row,) = [row for row in data["rows"] if row["method"] == "ganpso_swarm_ensemble"]
    assert row["ensemble_of"] == swarm["members"]
    assert not any(t["a"] == "ganpso_swarm_ensemble" for t in data["tests"])  # one seed: no
    # seed ensembles to meet, and an ensemble never meets a single model
    assert json.loads((cells_dir / "cnn" / "seed0" / "cell.json").read_text())["reused"]
    stamp = (cells_dir / "oversample" / "seed0" / "cell.json").stat().st_mtime_ns
    assert run_compare(out, cells_dir, "oversample") == 0
    assert (cells_dir / "oversample" / "seed0" / "cell.json").stat().st_mtime_ns == stamp
    assert "oversample" in (out / "report" / "report.md").read_text()


@needs_archive
def test_the_swarm_ensemble_needs_only_the_search(
    smoke_run: tuple[Path, list[str]], tmp_path: Path
) -> None:
    import shutil

    out = copy_of_smoke_run(smoke_run, tmp_path)
    for stage in ("final", "test", "ensemble"):  # as after `ganpso search` on its own
        shutil.rmtree(out / stage)
    assert run_compare(out, tmp_path / "compare", "ganpso_swarm_ensemble") == 0
    record = json.loads((out / "ensemble" / "stage.json").read_text())
    assert record["stage"] == "ensemble"
    assert (tmp_path / "compare" / "ganpso_swarm_ensemble" / "seed0" / "cell.json").exists()
    assert not (out / "final").exists()


@needs_archive
def test_compare_asks_the_run_for_its_search_without_gan(
    smoke_run: tuple[Path, list[str]], tmp_path: Path
) -> None:
    out = copy_of_smoke_run(smoke_run, tmp_path)
    assert not (out / "search-nogan").exists()  # on request only: the run left it out
    cells_dir = tmp_path / "compare"
    assert run_compare(out, cells_dir, "pso_no_gan") == 0
    stage = out / "search-nogan" / "stage.json"
    assert json.loads(stage.read_text())["stage"] == "search-nogan"
    history = json.loads((out / "search-nogan" / "history.json").read_text())
    assert not any(key.startswith("synthetic.") for key in history["best_settings"])
    best = TrainConfig.from_yaml(out / "search-nogan" / "best-config.yaml")
    trained = TrainConfig.from_yaml(cells_dir / "pso_no_gan" / "seed0" / "config.yaml")
    assert trained.lr == best.lr and not trained.synthetic.generator
    stamp = stage.stat().st_mtime_ns
    assert run_compare(out, cells_dir, "pso_no_gan") == 0
    assert stage.stat().st_mtime_ns == stamp  # a finished stage is read, not run again
    assert run_compare(out, cells_dir, "random_search") == 0  # the same space, sampled at random
    history = json.loads((out / "search-random" / "history.json").read_text())
    assert not any(key.startswith("synthetic.") for key in history["best_settings"])
    state = json.loads((out / "search-random" / "search-state.json").read_text())
    assert state["optimizer"]["kind"] == "random"
    best = TrainConfig.from_yaml(out / "search-random" / "best-config.yaml")
    trained = TrainConfig.from_yaml(cells_dir / "random_search" / "seed0" / "config.yaml")
    assert trained.lr == best.lr and not trained.synthetic.generator


def test_a_cell_reuses_another_rows_cell_of_the_same_recipe_and_seed(tmp_path: Path) -> None:
    from ganpso.config import write_yaml
    from ganpso.pipeline.compare import recipe_fingerprint, twin_cell

    def cell(method: str, seed: int, config: TrainConfig, record_recipe: bool) -> Path:
        folder = tmp_path / method / f"seed{seed}"
        folder.mkdir(parents=True)
        record = {"method": method, "seed": seed, "wall_seconds": 1.0}
        if record_recipe:
            record["recipe"] = recipe_fingerprint(config)
        (folder / "cell.json").write_text(json.dumps(record))
        write_yaml(config.to_dict(), folder / "config.yaml")
        return folder

    plain, weighted = TrainConfig(seed=0), TrainConfig(seed=0, class_weighting="inverse")
    cnn = cell("cnn", 0, plain, record_recipe=True)
    cell("class_weighted", 0, weighted, record_recipe=True)
    cell("oversample", 0, plain, record_recipe=False)  # no recorded recipe: never a twin
    assert twin_cell(tmp_path, "ganpso", 0, recipe_fingerprint(plain)) == cnn
    assert twin_cell(tmp_path, "cnn", 0, recipe_fingerprint(plain)) is None  # oversample: none
    assert twin_cell(tmp_path, "ganpso", 1, recipe_fingerprint(plain)) is None  # other seed
    other = TrainConfig(seed=0, lr=0.05)
    assert twin_cell(tmp_path, "ganpso", 0, recipe_fingerprint(other)) is None


def test_a_cell_reuses_the_runs_model_only_when_the_run_trained_it(tmp_path: Path) -> None:
    from ganpso.pipeline.compare import reusable_run_folder
    from ganpso.pipeline.config import RunConfig

    run = RunConfig(seed=0)
    assert reusable_run_folder("ganpso", run, tmp_path, 0) is None  # search only: no final
    (tmp_path / "final").mkdir()
    (tmp_path / "final" / "best.safetensors").write_bytes(b"weights")
    assert reusable_run_folder("ganpso", run, tmp_path, 0) == tmp_path / "final"
    assert reusable_run_folder("ganpso", run, tmp_path, 1) is None  # another seed
    assert reusable_run_folder("oversample", run, tmp_path, 0) is None


def test_recipe_fingerprint_reads_files_by_content_and_ignores_where_it_ran(
    tmp_path: Path,
) -> None:
    from ganpso.pipeline.compare import recipe_fingerprint

    (tmp_path / "a.safetensors").write_bytes(b"gan one")
    (tmp_path / "copy.safetensors").write_bytes(b"gan one")
    (tmp_path / "b.safetensors").write_bytes(b"gan two")

    def fingerprint(generator: str, **changes: object) -> str:
        synthetic = SyntheticConfig(generator=str(tmp_path / generator), ratio=0.5)
        return recipe_fingerprint(replace(TrainConfig(synthetic=synthetic), **changes))

    assert fingerprint("a.safetensors") == fingerprint("copy.safetensors", device="cuda")
    assert fingerprint("a.safetensors") != fingerprint("b.safetensors")
    assert fingerprint("a.safetensors") != fingerprint("a.safetensors", lr=0.2)


def test_a_cell_stays_fresh_when_config_options_are_added_and_stales_when_its_gan_changes(
    tmp_path: Path,
) -> None:
    from ganpso.config import write_yaml
    from ganpso.pipeline.compare import recipe_files, recipe_fingerprint, stale_cell

    def cell(name: str, config: TrainConfig, record: dict) -> Path:
        folder = tmp_path / name
        folder.mkdir()
        write_yaml(config.to_dict(), folder / "config.yaml")
        (folder / "cell.json").write_text(json.dumps({"method": "cnn", **record}))
        return folder

    plain = TrainConfig(seed=0)
    # recorded by an earlier fingerprint rule (a config option added since): the same recipe
    older_rule = cell("older-rule", plain, {"recipe": "0123456789abcdef"})
    assert not stale_cell(older_rule, plain)
    assert stale_cell(older_rule, replace(plain, lr=0.05))
    generator = tmp_path / "generator.safetensors"
    generator.write_bytes(b"gan one")
    with_gan = replace(plain, synthetic=SyntheticConfig(generator=str(generator), ratio=0.5))
    files = recipe_files(with_gan)
    gan_cell = cell("gan", with_gan, {"recipe": "x", "recipe_files": files})
    assert not stale_cell(gan_cell, with_gan)
    generator.write_bytes(b"gan two")  # rewritten in place: same path, other faces
    assert stale_cell(gan_cell, with_gan)
    assert recipe_fingerprint(with_gan, files) != recipe_fingerprint(with_gan)


@needs_archive
def test_compare_retrains_a_cell_made_with_another_recipe(
    smoke_run: tuple[Path, list[str]], tmp_path: Path
) -> None:
    import time

    from ganpso.pipeline.compare import recipe_fingerprint

    out = copy_of_smoke_run(smoke_run, tmp_path)
    cells_dir = tmp_path / "compare"
    assert run_compare(out, cells_dir, "gan_fixed") == 0
    cell = cells_dir / "gan_fixed" / "seed0"
    config = TrainConfig.from_yaml(cell / "config.yaml")
    config.synthetic.ratio = 0.25  # as if made before the hand-set ratio changed
    (cell / "config.yaml").write_text(json.dumps(config.to_dict()))
    record = json.loads((cell / "cell.json").read_text())
    record["recipe"] = recipe_fingerprint(config)
    (cell / "cell.json").write_text(json.dumps(record))
    assert run_compare(out, cells_dir, "gan_fixed") == 0
    (archived,) = (cells_dir / "replaced").glob("*/gan_fixed/seed0")
    assert TrainConfig.from_yaml(archived / "config.yaml").synthetic.ratio == 0.25
    assert TrainConfig.from_yaml(cell / "config.yaml").synthetic.ratio == 0.5
    assert json.loads((cell / "cell.json").read_text())["recipe"]

    # a new GAN written over the old file: same path and config, other weights
    generator_path = out / "gan" / "generator.safetensors"
    generator, header = load_generator(generator_path)
    with torch.no_grad():
        for parameter in generator.parameters():
            parameter.add_(0.01)
    gan_config = GanConfig(z_dim=header["z_dim"], g_width=header["width"])
    save_generator(generator_path, generator, gan_config, step=header["step"])
    time.sleep(1)  # the archive folders are named by the second
    assert run_compare(out, cells_dir, "gan_fixed") == 0
    assert len(list((cells_dir / "replaced").glob("*/gan_fixed/seed0"))) == 2


def test_only_stages_built_on_a_changed_section_are_stale() -> None:
    from ganpso.pipeline.config import RunConfig
    from ganpso.pipeline.rerun import stale_stages
    from ganpso.pipeline.run import STAGES

    base = RunConfig()
    fidelity = replace(base.search.fidelity, epochs=7)
    new_search = replace(base, search=replace(base.search, fidelity=fidelity))
    stale = ["search", "final", "test", "ensemble", "search-nogan", "search-random"]
    assert stale_stages(STAGES, base, new_search) == stale
    metrics = replace(base.gan_metrics, cas_epochs=3)
    assert stale_stages(STAGES, base, replace(base, gan_metrics=metrics)) == ["gan_metrics"]
    gan = replace(base, gan=replace(base.gan, lr_g=1e-3))
    assert "search-nogan" not in stale_stages(STAGES, base, gan)  # it uses no GAN
    assert stale_stages(STAGES, base, replace(base, device="cuda")) == []  # where: no input
    assert len(stale_stages(STAGES, base, replace(base, seed=1))) == len(STAGES)


def test_a_raised_gan_budget_continues_instead_of_starting_over() -> None:
    from ganpso.pipeline.config import RunConfig
    from ganpso.pipeline.rerun import budget_raised
    from ganpso.pipeline.run import stage_named

    base = RunConfig()
    base.gan.time_limit_minutes = 40.0
    stage = stage_named("gan")

    def gan(**changes: object) -> RunConfig:
        return replace(base, gan=replace(base.gan, **changes))

    assert budget_raised(stage, base, gan(time_limit_minutes=45.0, steps=base.gan.steps + 1))
    assert budget_raised(stage, base, gan(time_limit_minutes=None))  # no limit: larger
    assert not budget_raised(stage, base, gan(time_limit_minutes=30.0))
    assert not budget_raised(stage, base, gan(time_limit_minutes=45.0, lr_g=1e-3))
    assert not budget_raised(stage, base, replace(gan(time_limit_minutes=45.0), seed=1))
    assert not budget_raised(stage_named("search"), base, gan(time_limit_minutes=45.0))


@needs_archive
def test_rerun_with_more_gan_steps_continues_the_gan(
    smoke_run: tuple[Path, list[str]], tmp_path: Path
) -> None:
    out = copy_of_smoke_run(smoke_run, tmp_path)
    early_grid = out / "gan" / "samples" / "000010.png"
    stamp = early_grid.stat().st_mtime_ns
    assert main([*SMOKE_RUN, "--out", str(out), "--set", "gan.steps=30"]) == 0
    assert load_generator(out / "gan" / "generator.safetensors")[1]["step"] == 30
    assert early_grid.stat().st_mtime_ns == stamp  # steps 1-20 were not trained again
    (archive,) = (out / "replaced").iterdir()
    assert "gan" not in {p.name for p in archive.iterdir()}
    assert sorted(p.name for p in (archive / "gan_metrics").iterdir()) == [
        "gan-metrics.json",  # what judged the 20-step GAN
        "stage.json",
    ]
    assert (out / "gan" / "gan-metrics.json").exists()  # judged again, after 30 steps


def test_rescoring_candidates_are_the_best_finished_settings_then_the_base() -> None:
    from ganpso.pipeline.rescore import BASE, candidate_name, top_candidates

    rows = [
        {"settings": {"lr": 0.1}, "value": 0.4},
        {"settings": {"lr": 0.2}, "value": None},  # failed: never a candidate
        {"settings": {"lr": 0.3}, "value": 0.5},
        {"settings": {"lr": 0.4}, "value": 0.3},
    ]
    candidates = top_candidates(rows, 2, with_base=True, base_proxy=0.35)
    assert [c.settings for c in candidates] == [{"lr": 0.3}, {"lr": 0.1}, None]
    assert [c.proxy for c in candidates] == [0.5, 0.4, 0.35]
    assert candidates[0].name == candidate_name({"lr": 0.3}) != candidate_name({"lr": 0.1})
    assert candidates[-1].name == BASE
    assert [c.settings for c in top_candidates(rows, 9, with_base=False)] == [
        {"lr": 0.3},
        {"lr": 0.1},
        {"lr": 0.4},
    ]


def test_rescoring_chooses_by_full_training_and_survives_a_failure(tmp_path: Path) -> None:
    from ganpso.pipeline.rescore import Candidate, rescore
    from ganpso.search import SequentialExecutor

    candidates = [
        Candidate("proxy-best", {"lr": 0.3}, 0.5),
        Candidate("broken", {"lr": 0.2}, 0.45),
        Candidate("base", None, 0.4),
    ]
    full = {"proxy-best": 0.60, "base": 0.66}

    def objective(candidate: Candidate) -> float:
        if candidate.name == "broken":
            raise RuntimeError("loss became NaN")
        return full[candidate.name]

    winner = rescore(candidates, objective, SequentialExecutor(), tmp_path, log=lambda _: None)
    assert winner.name == "base"
    record = json.loads((tmp_path / "rescore.json").read_text())
    assert record["chosen"] == "base"
    assert [c["full"] for c in record["candidates"]] == [0.60, None, 0.66]
    assert "NaN" in record["candidates"][1]["error"]
    with pytest.raises(Exception, match="every full-fidelity training failed"):
        rescore(candidates[1:2], objective, SequentialExecutor(), tmp_path, log=lambda _: None)


def test_rescoring_reuses_a_finished_training_only_when_its_history_has_the_fitness_measures(
    tmp_path: Path,
) -> None:
    from ganpso.config import write_yaml
    from ganpso.metrics.fitness import DEFAULT_WEIGHTS
    from ganpso.pipeline.rescore import Candidate, FullTraining

    base = TrainConfig(epochs=2)
    trained = tmp_path / "classifier"
    trained.mkdir()
    write_yaml(base.to_dict(), trained / "config.yaml")
    scoring = FullTraining(base, tmp_path / "rescore", log=lambda _: None, trained=[trained])
    row = {"epoch": 1, "val/accuracy": 0.6} | {f"val/{m}": 0.5 for m in DEFAULT_WEIGHTS}

    (trained / "history.jsonl").write_text(json.dumps({"epoch": 1, "val/macro_f1": 0.5}) + "\n")
    assert scoring.folder_of(Candidate("base", None, 0.4)) == tmp_path / "rescore" / "base"

    (trained / "history.jsonl").write_text(json.dumps(row) + "\n")
    assert scoring.folder_of(Candidate("base", None, 0.4)) == trained
    other = Candidate("p1", {"lr": 0.05}, 0.5)  # another recipe never reuses it
    assert scoring.folder_of(other) == tmp_path / "rescore" / "p1"
    only_f1 = FullTraining(base, tmp_path / "rescore", trained=[trained], weights={"macro_f1": 1})
    (trained / "history.jsonl").write_text(json.dumps({"epoch": 1, "val/macro_f1": 0.5}) + "\n")
    assert only_f1.folder_of(Candidate("base", None, 0.4)) == trained


def test_rescoring_trains_again_a_candidate_whose_own_training_lacks_the_fitness_measures(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from types import SimpleNamespace

    from ganpso.config import write_yaml
    from ganpso.metrics.fitness import DEFAULT_WEIGHTS
    from ganpso.pipeline import rescore as rescore_module
    from ganpso.pipeline.rescore import Candidate, FullTraining

    base = TrainConfig(epochs=1)
    candidate = Candidate("p1", {"lr": 0.05}, 0.5)
    scoring = FullTraining(base, tmp_path / "rescore", log=lambda _: None)
    own = tmp_path / "rescore" / "p1"
    own.mkdir(parents=True)
    write_yaml(scoring.config(candidate).to_dict(), own / "config.yaml")
    (own / "history.jsonl").write_text(json.dumps({"epoch": 1, "val/macro_f1": 0.5}) + "\n")
    (own / "best.safetensors").write_bytes(b"old")
    fresh = {"epoch": 1, "val/accuracy": 0.6} | {f"val/{m}": 0.7 for m in DEFAULT_WEIGHTS}
    resumed = []

    def train(
        config: TrainConfig, dataset: object, out: Path, resume: bool, log: object
    ) -> SimpleNamespace:
        resumed.append(resume)
        return SimpleNamespace(history=[fresh])

    monkeypatch.setattr(rescore_module, "load_dataset", lambda _: None)
    monkeypatch.setattr(rescore_module, "search_dataset", lambda _: None)
    monkeypatch.setattr(rescore_module, "train_classifier", train)
    assert scoring(candidate) == pytest.approx(0.7)  # not a failed candidate
    assert resumed == [False]  # a fresh training, not a replay of the old history
    (archived,) = (tmp_path / "rescore" / "replaced").glob("*/p1")
    assert (archived / "best.safetensors").read_bytes() == b"old"  # kept, not deleted


@pytest.mark.parametrize("name", ["search", "search-nogan"])
def test_a_raised_rescore_budget_keeps_the_search(name: str) -> None:
    from ganpso.pipeline.config import RunConfig
    from ganpso.pipeline.rerun import budget_raised
    from ganpso.pipeline.run import stage_named

    base = RunConfig()
    stage = stage_named(name)

    def search(**changes: object) -> RunConfig:
        return replace(base, search=replace(base.search, **changes))

    assert budget_raised(stage, base, search(rescore_top_k=3))
    assert not budget_raised(stage, search(rescore_top_k=3), search(rescore_top_k=1))
    assert not budget_raised(stage, base, search(rescore_top_k=3, iterations=2))


def test_a_stage_on_request_runs_only_after_the_stages_it_builds_on(tmp_path: Path) -> None:
    from ganpso.errors import ConfigError
    from ganpso.pipeline.config import RunConfig
    from ganpso.pipeline.folders import write_run_config
    from ganpso.pipeline.run import STAGES, run_stage, stage_named, upstream

    assert [s.name for s in upstream(stage_named("search-nogan"))] == ["classifier"]
    assert [s.name for s in upstream(stage_named("test"))] == [
        "classifier",
        "gan",
        "search",
        "final",
    ]
    assert [s.name for s in STAGES if s.on_request] == ["search-nogan", "search-random"]
    write_run_config(RunConfig(), tmp_path)
    with pytest.raises(ConfigError, match="needs classifier.*ganpso run --config") as error:
        run_stage(tmp_path, "search-nogan", log=lambda _: None)
    assert "\n" not in str(error.value)
    with pytest.raises(ConfigError, match="not a stage"):
        run_stage(tmp_path, "report")


def test_run_help_lists_the_stages_and_the_report(monkeypatch: pytest.MonkeyPatch) -> None:
    from ganpso.cli import build_parser

    monkeypatch.setenv("COLUMNS", "400")  # no line wrapped inside a stage's name
    parser = build_parser()
    (commands,) = [a for a in parser._actions if a.dest == "command"]
    text = " ".join(commands.choices["run"].format_help().split())
    stages = (
        "classifier, gan, gan_metrics, search, final, test, ensemble, search-nogan, "
        "search-random, report"
    )
    assert f"stop after STAGE, one of {stages}" in text
    assert "--with STAGE" in text and "%%" not in text


def test_a_stage_counts_the_seconds_of_an_interrupted_session(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ganpso.pipeline import clock as clock_module
    from ganpso.pipeline.clock import SESSIONS_FILE, StageClock
    from ganpso.pipeline.folders import write_stage_record

    now = [100.0]
    monkeypatch.setattr(clock_module.time, "perf_counter", lambda: now[0])
    lines: list[str] = []
    crashed = StageClock(tmp_path / "search", "cpu: A", every=30)
    log = crashed.ticking(lines.append)
    for seconds in (10, 20, 45, 50):  # progress lines; the session then dies without stop()
        now[0] = 100.0 + seconds
        log(f"evaluation at {seconds} s")
    assert lines[-1] == "evaluation at 50 s"  # the log still logs
    saved = json.loads((tmp_path / "search" / SESSIONS_FILE).read_text())["sessions"]
    assert saved == [{"device": "cpu: A", "seconds": 45.0}]  # the last save: 30 s apart

    now[0] = 1000.0
    resumed = StageClock(tmp_path / "search", "cuda: B")
    now[0] = 1012.5
    write_stage_record(tmp_path, "search", resumed.stop())
    record = json.loads((tmp_path / "search" / "stage.json").read_text())
    assert record["seconds"] == 57.5 and record["device"] == "cpu: A, then cuda: B"
    assert [s["seconds"] for s in record["sessions"]] == [45.0, 12.5]
    assert not (tmp_path / "search" / SESSIONS_FILE).exists()


def test_an_extended_stage_adds_its_earlier_sessions_in_either_record_format(
    tmp_path: Path,
) -> None:
    from ganpso.pipeline.folders import EARLIER_STAGE_FILE, write_stage_record

    folder = tmp_path / "search"
    folder.mkdir()
    earlier = {"stage": "search", "seconds": 30.0, "device": "cpu", "sessions": [10.0, 20.0]}
    (folder / EARLIER_STAGE_FILE).write_text(json.dumps(earlier))
    write_stage_record(tmp_path, "search", [{"device": "cpu", "seconds": 5.0}])
    record = json.loads((folder / "stage.json").read_text())
    assert record["seconds"] == 35.0 and record["device"] == "cpu"
    assert [s["seconds"] for s in record["sessions"]] == [10.0, 20.0, 5.0]
    assert not (folder / EARLIER_STAGE_FILE).exists()


@needs_archive
def test_rerun_with_more_rescoring_keeps_the_search_evaluations(
    smoke_run: tuple[Path, list[str]], tmp_path: Path
) -> None:
    out = copy_of_smoke_run(smoke_run, tmp_path)
    evaluations = (out / "search" / "evaluations.jsonl").read_text()
    first = json.loads((out / "search" / "rescore.json").read_text())["candidates"]
    first_seconds = json.loads((out / "search" / "stage.json").read_text())["seconds"]
    assert main([*SMOKE_RUN, "--out", str(out), "--set", "search.rescore_top_k=2"]) == 0
    assert (out / "search" / "evaluations.jsonl").read_text() == evaluations
    stage = json.loads((out / "search" / "stage.json").read_text())
    assert stage["sessions"][0]["seconds"] == first_seconds
    assert stage["seconds"] == pytest.approx(sum(s["seconds"] for s in stage["sessions"]), abs=0.2)
    again = json.loads((out / "search" / "rescore.json").read_text())["candidates"]
    assert len(again) == 3

    def scores(rows: list[dict]) -> set[tuple[str, float]]:
        return {(row["name"], row["full"]) for row in rows}

    assert scores(first) <= scores(again)  # the trainings done before are reused
    (archive,) = (out / "replaced").iterdir()
    assert "search" not in {p.name for p in archive.iterdir()}
    assert (out / "final" / "metrics-PrivateTest.json").exists()


@needs_archive
def test_rerun_with_a_changed_config_redoes_only_stale_stages(
    smoke_run: tuple[Path, list[str]], tmp_path: Path
) -> None:
    out = copy_of_smoke_run(smoke_run, tmp_path)
    stamp = (out / "gan" / "stage.json").stat().st_mtime_ns
    old_search = (out / "search" / "history.json").read_text()
    assert main([*SMOKE_RUN, "--out", str(out), "--set", "search.iterations=1"]) == 0
    assert (out / "gan" / "stage.json").stat().st_mtime_ns == stamp
    (archive,) = (out / "replaced").iterdir()
    assert sorted(p.name for p in archive.iterdir()) == [
        "config.yaml",
        "ensemble",
        "final",
        "report",
        "search",
        "test",
    ]
    assert (archive / "search" / "history.json").read_text() == old_search
    assert len(json.loads((out / "search" / "history.json").read_text())["iterations"]) == 1
    assert (out / "final" / "metrics-PrivateTest.json").exists()


def complementary_members(per_class: int = 10) -> tuple[np.ndarray, list[np.ndarray]]:
    """Two members each right on half of the classes and wrong, less confidently, elsewhere."""
    labels = np.repeat(np.arange(len(EMOTIONS)), per_class)
    members = []
    for knows in (lambda k: k < 4, lambda k: k >= 4):
        probs = np.full((len(labels), len(EMOTIONS)), 0.0)
        for row, label in enumerate(labels):
            if knows(label):
                probs[row, label] = 0.6
            else:
                probs[row, 0 if label >= 4 else 4] = 0.4
        members.append(probs)
    return labels, members


def test_ensemble_selection_weighs_the_members_that_help() -> None:
    from ganpso.metrics.fitness import DEFAULT_WEIGHTS
    from ganpso.pipeline.swarm_ensemble import greedy_weights, probability_fitness

    labels, (first_half, second_half) = complementary_members()
    shares = greedy_weights([first_half, second_half], labels, DEFAULT_WEIGHTS, rounds=4)
    assert shares.tolist() == [0.5, 0.5]
    assert probability_fitness(first_half + second_half, labels, DEFAULT_WEIGHTS) == 1.0
    perfect = np.eye(len(EMOTIONS))[labels]
    noise = np.random.default_rng(0).dirichlet(np.ones(len(EMOTIONS)), len(labels))
    shares = greedy_weights([noise, perfect, second_half], labels, DEFAULT_WEIGHTS, rounds=6)
    assert shares.tolist() == [0.0, 1.0, 0.0]  # adding others ties: the picked member stays


def write_member(folder: Path) -> None:
    folder.mkdir(parents=True)
    (folder / "best.safetensors").write_bytes(b"")
    (folder / "config.yaml").write_text("")


def test_ensemble_members_are_the_rescored_trainings_found_where_the_run_folder_is_now(
    tmp_path: Path,
) -> None:
    from ganpso.pipeline.swarm_ensemble import rescored_members

    search = tmp_path / "run" / "search"
    write_member(search / "rescore" / "p1")
    write_member(tmp_path / "run" / "classifier")
    candidates = [
        {"name": "p1", "full": 0.61, "folder": "/moved/run/search/rescore/p1"},
        {"name": "p2", "full": None, "folder": "/moved/run/search/rescore/p2"},  # failed
        {"name": "base", "full": 0.64, "folder": "/moved/run/classifier"},
    ]
    (search / "rescore.json").write_text(json.dumps({"candidates": candidates}))
    assert rescored_members(search) == [tmp_path / "run" / "classifier", search / "rescore" / "p1"]
    candidates[0]["name"] = "p3"
    (search / "rescore.json").write_text(json.dumps({"candidates": candidates}))
    with pytest.raises(ConfigError, match="candidate p3's training .* has no best.safetensors"):
        rescored_members(search)
    assert rescored_members(tmp_path) == []  # a search that did not rescore


def test_a_search_refuses_truncation_as_a_knob(tmp_path: Path) -> None:
    from ganpso.pipeline.config import SearchConfig
    from ganpso.pipeline.search import search_pipeline

    space = {"synthetic.truncation": {"type": "float", "low": 0.5, "high": 2.0}}
    with pytest.raises(ConfigError, match="truncation is fixed per search"):
        search_pipeline(SearchConfig(space=space), base=TrainConfig(), out=tmp_path)


def test_start_points_fill_left_out_keys_from_the_base_recipe() -> None:
    from ganpso.pipeline.search import start_positions
    from ganpso.search import SearchSpace

    space = SearchSpace.from_dict(
        {
            "lr": {"type": "float", "low": 0.05, "high": 0.2, "log": True},
            "sampling": {"type": "choice", "choices": ["none", "oversample"]},
            "synthetic.class_ratios.disgust": {"type": "float", "low": 0.0, "high": 0.6},
        }
    )
    base = TrainConfig(lr=0.1, synthetic=SyntheticConfig(ratio=0.25))
    start = start_positions([{"sampling": "oversample"}, {}], space, base)
    assert start is not None and start.shape == (2, 3)
    first = space.decode(start[0])
    assert first["sampling"] == "oversample" and first["lr"] == pytest.approx(0.1)
    assert first["synthetic.class_ratios.disgust"] == pytest.approx(0.25)  # its ratio: the base's
    assert space.decode(start[1])["sampling"] == "none"
    assert start_positions([], space, base) is None
    ratios = SearchSpace.from_dict(
        {
            "synthetic.ratio": {"type": "float", "low": 0.0, "high": 0.6},
            "synthetic.class_ratios.disgust": {"type": "float", "low": 0.0, "high": 0.6},
        }
    )
    gan = ratios.decode(start_positions([{"synthetic.ratio": 0.5}], ratios, base)[0])
    assert gan["synthetic.class_ratios.disgust"] == pytest.approx(0.5)  # follows the point's


def test_bad_start_points_name_the_point_and_the_key() -> None:
    from ganpso.pipeline.config import SearchConfig
    from ganpso.pipeline.search import start_positions
    from ganpso.search import SearchSpace

    space = SearchSpace.from_dict({"lr": {"type": "float", "low": 0.05, "high": 0.2}})
    with pytest.raises(ConfigError, match=r"start_points\[0\]: dropout not in search.space"):
        start_positions([{"dropout": 0.1}], space, TrainConfig())
    with pytest.raises(ConfigError, match=r"start_points\[1\]: .*'lr': 0.5 is outside"):
        start_positions([{}, {"lr": 0.5}], space, TrainConfig())
    left_out = r"start_points\[0\]: .*outside .*left out, so the base recipe's: lr"
    with pytest.raises(ConfigError, match=left_out):
        start_positions([{}], space, TrainConfig(lr=0.01))
    with pytest.raises(ConfigError, match=r"start_points\[0\]: .*lr"):
        start_positions([{"lr": "fast"}], space, TrainConfig())
    with pytest.raises(ConfigError, match="start_points: expected a list of settings"):
        SearchConfig.from_dict({"start_points": ["oversample"]})


def test_a_search_evaluates_its_start_points_first(tmp_path: Path, monkeypatch) -> None:
    from ganpso.pipeline import search as search_module
    from ganpso.pipeline.config import SearchConfig

    def fake_pool(config, base, out, log) -> Path:
        return out / "pool.npz"

    class LearningRateObjective:  # no training: the fitness prefers a learning rate of 0.07
        def __init__(self, base, pool, fidelity, weights) -> None:
            pass

        def __call__(self, settings: dict) -> float:
            return -abs(settings["lr"] - 0.07) - (settings["sampling"] == "none")

    monkeypatch.setattr(search_module, "ensure_pool", fake_pool)
    monkeypatch.setattr(search_module, "PipelineObjective", LearningRateObjective)
    config = SearchConfig(
        space={
            "lr": {"type": "float", "low": 0.05, "high": 0.2, "log": True},
            "sampling": {"type": "choice", "choices": ["none", "oversample"]},
        },
        start_points=[{"lr": 0.07, "sampling": "oversample"}],
        iterations=2,
        batch_size=3,
    )
    chosen = search_module.search_pipeline(
        config, base=TrainConfig(), out=tmp_path, log=lambda _: None
    )
    first = json.loads((tmp_path / "evaluations.jsonl").read_text().splitlines()[0])
    assert first["settings"]["sampling"] == "oversample"
    assert first["settings"]["lr"] == pytest.approx(0.07)
    assert chosen.sampling == "oversample" and chosen.lr == pytest.approx(0.07)


def test_the_search_without_gan_drops_gan_keys_from_its_start_points() -> None:
    from ganpso.pipeline.config import SearchConfig
    from ganpso.pipeline.run import without_gan_knobs

    config = SearchConfig(
        space={
            "lr": {"type": "float", "low": 0.05, "high": 0.2},
            "synthetic.ratio": {"type": "float", "low": 0.0, "high": 0.6},
        },
        start_points=[{"synthetic.ratio": 0.5}, {"lr": 0.1, "synthetic.ratio": 0.2}, {}],
    )
    stripped = without_gan_knobs(config)
    assert list(stripped.space) == ["lr"]
    assert stripped.start_points == [{}, {"lr": 0.1}]
