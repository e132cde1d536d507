from pathlib import Path

import pytest

from ganpso.config import TrainConfig, apply_overrides, read_yaml, write_yaml
from ganpso.errors import ConfigError

CONFIGS = Path(__file__).parents[1] / "configs"


@pytest.mark.parametrize("name", ["default.yaml", "smoke.yaml"])
def test_shipped_configs_load(name: str) -> None:
    config = TrainConfig.from_yaml(CONFIGS / name)
    assert config.epochs >= 1 and config.model.name == "vgg_small"


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
        ({"precision": "fp16"}, r"config.precision: 'fp16' is not one of \['bf16', 'fp32'\]"),
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
