import json
import math

import numpy as np
import pytest

from ganpso.errors import CheckpointError, ConfigError
from ganpso.search import (
    ChoiceParam,
    FloatParam,
    IntParam,
    ParticleSwarm,
    PSOConfig,
    SearchSpace,
    Trial,
    build_topology,
    optimize,
)

CENTRE = 0.3  # the sphere's minimum in the unit cube, off-centre so nothing is found by symmetry


def sphere(x: np.ndarray) -> float:
    return float(np.sum((x - CENTRE) ** 2))


def run(swarm: ParticleSwarm, objective=sphere) -> ParticleSwarm:
    while not swarm.done:
        for trial in swarm.ask():
            swarm.tell(trial, objective(trial.position))
    return swarm


def minimize_config(**overrides) -> PSOConfig:
    return PSOConfig(**{"swarm_size": 10, "iterations": 40, "direction": "minimize"} | overrides)


# search space ---------------------------------------------------------------------------------

SPEC = {
    "lr": {"type": "float", "low": 1e-3, "high": 0.3, "log": True},
    "dropout": {"type": "float", "low": 0, "high": 0.5},
    "epochs": {"type": "int", "low": 2, "high": 8},
    "width": {"type": "int", "low": 8, "high": 128, "log": True},
    "sampler": {"type": "choice", "choices": ["none", "oversample"]},
}


@pytest.mark.parametrize(
    "settings",
    [
        {"lr": 1e-3, "dropout": 0.0, "epochs": 2, "width": 8, "sampler": "none"},
        {"lr": 0.3, "dropout": 0.5, "epochs": 8, "width": 128, "sampler": "oversample"},
        {"lr": 0.0123, "dropout": 0.271, "epochs": 5, "width": 37, "sampler": "none"},
    ],
)
def test_encode_decode_round_trip(settings) -> None:
    space = SearchSpace.from_dict(SPEC)
    u = space.encode(settings)
    assert u.shape == (space.dim,) and np.all((u >= 0) & (u <= 1))
    decoded = space.decode(u)
    assert decoded["lr"] == pytest.approx(settings["lr"], rel=1e-9)
    assert decoded["dropout"] == pytest.approx(settings["dropout"], rel=1e-9, abs=1e-12)
    assert {k: decoded[k] for k in ("epochs", "width", "sampler")} == {
        k: settings[k] for k in ("epochs", "width", "sampler")
    }
    assert type(decoded["epochs"]) is int and type(decoded["lr"]) is float


def test_every_integer_and_choice_is_reachable_equally() -> None:
    ints, choice = IntParam("n", 2, 5), ChoiceParam("c", ("a", "b", "c"))
    grid = (np.arange(1200) + 0.5) / 1200
    assert np.unique([ints.decode(u) for u in grid], return_counts=True)[1].tolist() == [300] * 4
    assert [choice.decode(u) for u in (0.0, 0.34, 1.0)] == ["a", "b", "c"]
    log_ints = IntParam("w", 1, 1000, log=True)
    assert [log_ints.decode(u) for u in (0.0, 1.0)] == [1, 1000]
    assert FloatParam("lr", 1e-4, 1.0, log=True).decode(0.5) == pytest.approx(1e-2)


def test_space_round_trips_through_its_dict() -> None:
    space = SearchSpace.from_dict(SPEC)
    assert SearchSpace.from_dict(space.to_dict()).to_dict() == space.to_dict()


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"lr": {"type": "real", "low": 0, "high": 1}}, r"'lr': unknown type 'real'; valid types"),
        ({"lr": {"type": "float", "low": 1, "high": 0}}, r"'lr': needs low < high"),
        ({"lr": {"type": "float", "low": 0, "high": 1, "log": True}}, r"'lr': log scale needs"),
        ({"n": {"type": "int", "low": 1.5, "high": 4}}, r"'n': int bounds must be whole"),
        ({"n": {"type": "int", "low": 1}}, r"'n': type int needs 'low' and 'high'"),
        ({"c": {"type": "choice", "choices": []}}, r"'c': choices must not be empty"),
        ({"c": {"type": "choice", "choices": "ab"}}, r"'c': 'choices' must be a list"),
        ({"x": {"type": "float", "low": 0, "high": 1, "step": 2}}, r"'x': unknown key\(s\)"),
    ],
)
def test_bad_space_specs_name_the_parameter(spec, message) -> None:
    with pytest.raises(ConfigError, match=message):
        SearchSpace.from_dict(spec)


def test_encode_rejects_values_outside_the_space() -> None:
    space = SearchSpace.from_dict(SPEC)
    good = {"lr": 0.01, "dropout": 0.1, "epochs": 3, "width": 16, "sampler": "none"}
    with pytest.raises(ConfigError, match="'epochs'"):
        space.encode(good | {"epochs": 9})
    with pytest.raises(ConfigError, match="'sampler': 'smote' is not one of"):
        space.encode(good | {"sampler": "smote"})
    with pytest.raises(ConfigError, match=r"missing \['lr'\]"):
        space.encode({k: v for k, v in good.items() if k != "lr"})


# swarm ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("topology", ["global", "ring"])
@pytest.mark.parametrize("dim", [5, 10])
def test_converges_on_sphere(topology, dim) -> None:
    config = minimize_config(swarm_size=20, iterations=100, topology=topology)
    swarm = run(ParticleSwarm(dim, config, rng=np.random.default_rng(0)))
    assert swarm.best_value < 1e-3
    assert np.allclose(swarm.best_position, CENTRE, atol=0.03)
    assert len(swarm.history) == 100
    assert swarm.history[-1]["spread"] < swarm.history[0]["spread"]


def test_converges_on_rosenbrock_2d() -> None:
    def rosenbrock(u: np.ndarray) -> float:  # [-2.048, 2.048]^2, minimum 0 at (1, 1)
        x, y = -2.048 + 4.096 * u
        return float(100.0 * (y - x**2) ** 2 + (1.0 - x) ** 2)

    result = optimize(rosenbrock, 2, minimize_config(swarm_size=20, iterations=100))
    assert result.best_value < 1e-3


def test_maximize_finds_the_maximum() -> None:
    config = PSOConfig(swarm_size=10, iterations=40, direction="maximize")
    result = optimize(lambda x: -sphere(x), 3, config, np.random.default_rng(1))
    assert result.best_value > -1e-3
    assert [h["best"] for h in result.history] == sorted(h["best"] for h in result.history)


def test_same_seed_same_trajectory() -> None:
    first = run(ParticleSwarm(4, minimize_config(), rng=np.random.default_rng(7)))
    second = run(ParticleSwarm(4, minimize_config(), rng=np.random.default_rng(7)))
    other = run(ParticleSwarm(4, minimize_config(), rng=np.random.default_rng(8)))
    assert first.history == second.history
    assert np.array_equal(first.positions, second.positions)
    assert first.history != other.history


def test_ask_tell_equals_the_convenience_loop() -> None:
    swarm = run(ParticleSwarm(3, minimize_config(), rng=np.random.default_rng(3)))
    result = optimize(sphere, 3, minimize_config(), rng=np.random.default_rng(3))
    assert result.best_value == swarm.best_value
    assert np.array_equal(result.best_position, swarm.best_position)
    assert result.history == swarm.history
    assert result.evaluations == 10 * 40 and result.failures == 0


def test_resume_mid_iteration_equals_an_uninterrupted_search() -> None:
    config = minimize_config(iterations=12)
    reference = run(ParticleSwarm(3, config, rng=np.random.default_rng(5)))

    swarm = ParticleSwarm(3, config, rng=np.random.default_rng(5))
    evaluated = []
    for _ in range(4):  # four whole iterations ...
        for trial in swarm.ask():
            swarm.tell(trial, sphere(trial.position))
    for trial in swarm.ask()[:6]:  # ... and 6 of the 10 particles of the fifth
        swarm.tell(trial, sphere(trial.position))
        evaluated.append(trial.particle)
    state = json.loads(json.dumps(swarm.state_dict()))  # the crash: only the JSON survives

    resumed = ParticleSwarm(3, config, rng=np.random.default_rng(12345))
    resumed.load_state_dict(state)
    pending = resumed.ask()
    assert sorted(t.particle for t in pending) == sorted(set(range(10)) - set(evaluated))
    run(resumed)
    assert resumed.best_value == reference.best_value
    assert np.array_equal(resumed.best_position, reference.best_position)
    assert np.array_equal(resumed.positions, reference.positions)
    assert resumed.history == reference.history


def test_state_from_another_config_is_refused() -> None:
    state = ParticleSwarm(3, minimize_config()).state_dict()
    with pytest.raises(CheckpointError, match="different dim or PSO config"):
        ParticleSwarm(3, minimize_config(swarm_size=5)).load_state_dict(state)
    with pytest.raises(CheckpointError, match="version"):
        ParticleSwarm(3, minimize_config()).load_state_dict({"version": 99})


@pytest.mark.parametrize("failure", ["raise", "nan", "inf"])
def test_failing_objective_gets_the_worst_value(failure) -> None:
    calls = 0

    def flaky(x: np.ndarray) -> float:
        nonlocal calls
        calls += 1
        if calls % 3 == 0:
            if failure == "raise":
                raise RuntimeError("CUDA out of memory")
            return math.nan if failure == "nan" else math.inf
        return sphere(x)

    result = optimize(flaky, 3, minimize_config(), np.random.default_rng(0))
    assert result.evaluations == 400 and result.failures == 400 // 3
    assert result.best_value is not None and math.isfinite(result.best_value)
    assert result.best_value < 1e-2
    assert sum(h["failed"] for h in result.history) == 400 // 3
    json.dumps(ParticleSwarm(3, minimize_config()).state_dict(), allow_nan=False)


def test_all_failures_leave_no_best() -> None:
    result = optimize(lambda x: math.nan, 2, minimize_config(iterations=3))
    assert result.best_value is None and result.best_position is None
    assert result.failures == 30 and result.history[-1]["mean"] is None


def test_ask_repeats_untold_particles_and_tell_refuses_misuse() -> None:
    swarm = ParticleSwarm(2, minimize_config(swarm_size=4, iterations=2))
    trials = swarm.ask()
    assert [t.particle for t in trials] == [0, 1, 2, 3]
    swarm.tell(trials[1], 1.0)
    assert [t.particle for t in swarm.ask()] == [0, 2, 3]
    with pytest.raises(ValueError, match="already told"):
        swarm.tell(trials[1], 1.0)
    with pytest.raises(ValueError, match="iteration 5"):
        swarm.tell(Trial(0, 5, trials[0].position), 1.0)


@pytest.mark.parametrize("boundary", ["reflect", "clip", "random"])
def test_positions_stay_in_the_unit_cube(boundary) -> None:
    # optimum outside the cube at -1: particles press against the faces the whole time
    config = minimize_config(boundary=boundary, velocity_clamp=None, iterations=30)
    swarm = ParticleSwarm(4, config, rng=np.random.default_rng(0))
    while not swarm.done:
        for trial in swarm.ask():
            assert np.all((trial.position >= 0.0) & (trial.position <= 1.0))
            swarm.tell(trial, float(np.sum((trial.position + 1.0) ** 2)))
    if boundary != "random":  # re-drawing escaped particles keeps them off the faces
        assert swarm.best_value < 4 * 1.01**2


def test_velocity_clamp_limits_each_step() -> None:
    swarm = ParticleSwarm(3, minimize_config(velocity_clamp=0.05), rng=np.random.default_rng(0))
    before = swarm.positions.copy()
    for trial in swarm.ask():
        swarm.tell(trial, sphere(trial.position))
    assert np.abs(swarm.positions - before).max() <= 0.05 + 1e-12


def test_constriction_runs_and_needs_phi_above_four() -> None:
    config = minimize_config(constriction=True, cognitive=2.05, social=2.05)
    assert optimize(sphere, 3, config, np.random.default_rng(0)).best_value < 1e-3
    with pytest.raises(ConfigError, match="cognitive \\+ social > 4"):
        minimize_config(constriction=True)


def test_latin_hypercube_covers_every_stratum() -> None:
    swarm = ParticleSwarm(6, PSOConfig(swarm_size=10), rng=np.random.default_rng(0))
    strata = np.floor(swarm.positions * 10).astype(int)  # (10, 6)
    assert all(sorted(column) == list(range(10)) for column in strata.T)


def test_ring_sees_only_its_neighbours() -> None:
    losses = np.array([5.0, 1.0, 4.0, 3.0, 2.0, 6.0])
    assert build_topology("ring", 6, 3).best_neighbour(losses).tolist() == [1, 1, 1, 4, 4, 4]
    assert build_topology("global", 6).best_neighbour(losses).tolist() == [1] * 6


def test_unknown_topology_lists_valid_names() -> None:
    with pytest.raises(ConfigError, match=r"'star' is unknown; valid topologies: \['global', "):
        PSOConfig(topology="star")
    with pytest.raises(ConfigError, match=r"valid topologies: \['global', 'ring'\]"):
        build_topology("star", 4)


def test_config_from_dict_checks_keys_and_types() -> None:
    config = PSOConfig.from_dict({"swarm_size": 6, "topology": "ring", "velocity_clamp": None})
    assert config.swarm_size == 6 and config.velocity_clamp is None
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['swarm'\]"):
        PSOConfig.from_dict({"swarm": 6})
    with pytest.raises(ConfigError, match="pso.boundary: 'wrap' is not one of"):
        PSOConfig.from_dict({"boundary": "wrap"})
