from pathlib import Path

import pytest

from ganpso.classifier.config import TrainConfig
from ganpso.config import apply_overrides, read_yaml, write_yaml
from ganpso.errors import ConfigError
from ganpso.gan.config import GanConfig
from ganpso.pipeline.config import RunConfig, SearchConfig

ROOT = Path(__file__).parents[1]
CONFIGS = ROOT / "configs"
PROFILES = ROOT / "src" / "ganpso" / "profiles"
# every YAML the project ships, with the config it is for
SHIPPED = {
    CONFIGS / "default.yaml": TrainConfig,
    CONFIGS / "smoke.yaml": TrainConfig,
    CONFIGS / "search.yaml": SearchConfig,
    CONFIGS / "gan.yaml": GanConfig,
    CONFIGS / "gan-gpu.yaml": GanConfig,
    CONFIGS / "search-wide.yaml": SearchConfig,
    PROFILES / "default.yaml": RunConfig,
    PROFILES / "gpu.yaml": RunConfig,
    PROFILES / "wide.yaml": RunConfig,
    PROFILES / "smoke.yaml": RunConfig,
}


def test_every_shipped_yaml_is_listed() -> None:
    assert set(CONFIGS.glob("*.yaml")) | set(PROFILES.glob("*.yaml")) == set(SHIPPED)


@pytest.mark.parametrize("path", sorted(SHIPPED), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_shipped_yaml_loads(path: Path) -> None:
    config = SHIPPED[path].from_yaml(path)
    assert SHIPPED[path].from_dict(config.to_dict()) == config  # what a run writes reads back


def test_presets_are_diffs_of_the_default_profile() -> None:
    default = RunConfig.from_yaml(PROFILES / "default.yaml")
    smoke = RunConfig.from_yaml(PROFILES / "smoke.yaml")
    assert read_yaml(PROFILES / "smoke.yaml")["search"]["space"]["lr"]["type"] == "float"
    assert smoke.classifier.model.width == 8 and smoke.classifier.lr == default.classifier.lr
    assert set(smoke.search.space) == set(default.search.space)
    recipe = TrainConfig.from_yaml(CONFIGS / "default.yaml")
    assert recipe == default.classifier  # the repository's recipe is the profile's classifier
    assert SearchConfig.from_yaml(CONFIGS / "search.yaml").space == default.search.space


@pytest.mark.parametrize(
    "method", ["class_weighted", "oversample", "focal", "logit_adjusted", "ldam_drw"]
)
def test_recipe_configs_of_comparison_rows_equal_what_compare_trains(method: str) -> None:
    """configs/recipe/<row>.yaml, the refresh's cells, are the rows `ganpso compare` trains."""
    from ganpso.pipeline.compare import method_config

    run = RunConfig.from_yaml(PROFILES / "default.yaml")
    path = CONFIGS / "recipe" / f"{method.replace('_', '-')}.yaml"
    assert TrainConfig.from_yaml(path) == method_config(method, run, ROOT / "runs" / "x", 0)


def test_base_merges_sections_and_follows_sections(tmp_path) -> None:
    (tmp_path / "parent.yaml").write_text(
        "epochs: 5\nmodel: {width: 16, dropout: 0.2}\nrun: {inner: {epochs: 7}}\n"
    )
    (tmp_path / "child.yaml").write_text("base: parent.yaml\nmodel: {width: 8}\n")
    assert read_yaml(tmp_path / "child.yaml") == {
        "epochs": 5,
        "model": {"width": 8, "dropout": 0.2},
        "run": {"inner": {"epochs": 7}},
    }
    (tmp_path / "section.yaml").write_text("base: parent.yaml#run.inner\nlr: 0.2\n")
    assert read_yaml(tmp_path / "section.yaml") == {"epochs": 7, "lr": 0.2}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("base: loop.yaml\n", "leads back to itself"),
        ("base: missing.yaml\n", "missing.yaml: config file not found"),
        ("base: loop.yaml#nowhere\n", "leads back to itself"),
        ("base: [1]\n", "base must be a file name"),
    ],
)
def test_bad_bases_name_the_file(tmp_path, text: str, message: str) -> None:
    (tmp_path / "loop.yaml").write_text(text)
    with pytest.raises(ConfigError, match=message):
        read_yaml(tmp_path / "loop.yaml")


def test_base_section_must_exist(tmp_path) -> None:
    (tmp_path / "parent.yaml").write_text("epochs: 5\n")
    (tmp_path / "child.yaml").write_text("base: parent.yaml#classifier\n")
    with pytest.raises(ConfigError, match="has no section classifier"):
        read_yaml(tmp_path / "child.yaml")


def test_run_config_refuses_a_stage_that_contradicts_the_run() -> None:
    with pytest.raises(ConfigError, match=r"classifier.seed: 5 differs from the run's seed 0"):
        RunConfig.from_dict({"classifier": {"seed": 5}})
    with pytest.raises(ConfigError, match=r"gan.data: .* differs from the run's data"):
        RunConfig.from_dict({"data": {"source": "a.zip"}, "gan": {"data": {"source": "b.zip"}}})
    saved = RunConfig.from_dict({"seed": 3, "device": "cpu"}).to_dict()
    assert RunConfig.from_dict(saved).classifier.seed == 3  # a saved run repeats them: fine


def test_search_pso_is_typed() -> None:
    assert SearchConfig.from_dict({"pso": {"topology": "ring"}}).pso.topology == "ring"
    with pytest.raises(ConfigError, match=r"pso: unknown key\(s\) \['inertia'\]"):
        SearchConfig.from_dict({"pso": {"inertia": 0.5}})
    with pytest.raises(ConfigError, match="search.pso.swarm_size: set search.batch_size"):
        SearchConfig.from_dict({"pso": {"swarm_size": 4}})


def test_yaml_round_trip(tmp_path) -> None:
    config = TrainConfig.from_dict({"model": {"width": 16}, "lr": 1, "data": {"cache_dir": None}})
    assert config.lr == 1.0 and isinstance(config.lr, float)
    write_yaml(config.to_dict(), tmp_path / "c.yaml")
    assert TrainConfig.from_yaml(tmp_path / "c.yaml") == config


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"epochz": 3}, r"unknown key\(s\) \['epochz'\]; valid keys: \[.*'epochs'"),
        ({"model": {"widht": 3}}, r"config.model: unknown key"),
        ({"epochs": "ten"}, r"config.epochs: expected int"),
        ({"epochs": True}, r"config.epochs: expected int"),
        (
            {"precision": "fp16"},
            r"config.precision: 'fp16' is not one of \['auto', 'bf16', 'fp32'\]",
        ),
        ({"model": 3}, r"config.model: expected a mapping"),
    ],
)
def test_bad_configs_name_the_problem(raw, message) -> None:
    with pytest.raises(ConfigError, match=message):
        TrainConfig.from_dict(raw)


def test_overrides_parse_values_as_yaml() -> None:
    merged = apply_overrides({"model": {"width": 32}}, ["model.width=8", "tta=false", "lr=0.05"])
    assert merged == {"model": {"width": 8}, "tta": False, "lr": 0.05}
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        apply_overrides({}, ["epochs"])


def test_read_yaml_errors_name_the_file(tmp_path) -> None:
    with pytest.raises(ConfigError, match="missing.yaml: config file not found"):
        read_yaml(tmp_path / "missing.yaml")
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="list.yaml: a config must be a mapping"):
        read_yaml(tmp_path / "list.yaml")
    (tmp_path / "broken.yaml").write_text("a: [1, 2\n")
    with pytest.raises(ConfigError, match="broken.yaml: cannot read config"):
        read_yaml(tmp_path / "broken.yaml")


def test_scientific_notation_without_a_dot_is_a_float() -> None:
    # YAML 1.1 reads 1e-4 as the string "1e-4"; --set lr=1e-4 must still mean 0.0001
    raw = apply_overrides({}, ["lr=1e-4", "weight_decay=5E-4"])
    config = TrainConfig.from_dict(raw)
    assert (config.lr, config.weight_decay) == (1e-4, 5e-4)
    with pytest.raises(ConfigError, match="expected float"):
        TrainConfig.from_dict({"lr": "1e-4x"})
