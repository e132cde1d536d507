"""The search runner, its executors and the baseline samplers: small contracts, known answers."""

import json
import math
import os
import re
import sys

import numpy as np
import pytest
import yaml

from ganpso.errors import CheckpointError, ConfigError
from ganpso.search import (
    FloatParam,
    IntParam,
    ProcessPoolExecutor,
    RayExecutor,
    SearchSpace,
    SequentialExecutor,
    build_executor,
    build_optimizer,
    run_search,
)
from ganpso.search.executors import evaluate_item

SPACE = SearchSpace([FloatParam(name, -1.0, 1.0) for name in ("x", "y", "z")])
TARGET = {"x": 0.3, "y": -0.2, "z": 0.5}  # the sphere's maximum, off-centre


# objectives: module level so that process and Ray workers can unpickle them ------------------


def sphere(settings: dict) -> float:
    """Maximised: 0 at TARGET, negative elsewhere."""
    return -sum((settings[k] - TARGET[k]) ** 2 for k in TARGET)


def flaky(settings: dict) -> float:
    """Raises for large x, NaN for large y, the sphere elsewhere."""
    if settings["x"] > 0.5:
        raise ValueError("x is too large\nsecond line")
    if settings["y"] > 0.5:
        return float("nan")
    return sphere(settings)


def torch_threads(_: object) -> float:
    import torch

    return float(torch.get_num_threads())


class Crash(BaseException):
    """Like Ctrl-C or a killed job: not an Exception, so it is not turned into a failure."""


class Counting:
    """Counts the calls; with ``crash_after`` the search dies on the call after that many."""

    def __init__(self, fn=sphere, crash_after: int | None = None) -> None:
        self.fn, self.crash_after, self.calls = fn, crash_after, 0

    def __call__(self, settings: dict) -> float:
        if self.crash_after is not None and self.calls >= self.crash_after:
            raise Crash
        self.calls += 1
        return self.fn(settings)


def search(out_dir, objective=sphere, name="pso", executor=None, iterations=6, batch=5, seed=0):
    lines: list[str] = []
    optimizer = build_optimizer(name, SPACE.dim, iterations, batch, seed)
    outcome = run_search(
        optimizer, SPACE, objective, executor or SequentialExecutor(), out_dir, lines.append
    )
    return outcome, lines


def trajectory(history: list[dict]) -> list[dict]:
    """History without the wall-clock seconds, which differ between runs."""
    return [{k: v for k, v in h.items() if k != "seconds"} for h in history]


POINTS = [{"x": 0.1, "y": 0.2, "z": 0.3}, {"x": 0.9, "y": 0.0, "z": 0.0}]
POINTS += [{"x": 0.0, "y": 0.9, "z": 0.0}, {"x": -0.4, "y": -0.6, "z": 0.8}]  # raise, NaN, fine


# runner ---------------------------------------------------------------------------------------


def test_sequential_search_converges_and_writes_its_files(tmp_path) -> None:
    outcome, lines = search(tmp_path, iterations=20, batch=10)
    assert outcome.best_value > -1e-3 and outcome.evaluations == 200
    assert all(abs(outcome.best_settings[k] - TARGET[k]) < 0.03 for k in TARGET)
    iteration_lines = [line for line in lines if line.startswith("iter ")]
    assert re.fullmatch(
        r"iter 1/20  best -?\d\.\d{4}  mean -?\d\.\d{4}  failed 0  \d+\.\d s",
        iteration_lines[0],
    )
    assert re.fullmatch(r"  evaluation 1/10: -?\d\.\d{4} \(\d+\.\d s\)", lines[0])
    assert yaml.safe_load((tmp_path / "best.yaml").read_text()) == outcome.best_settings
    assert (tmp_path / "convergence.png").read_bytes()[:4] == b"\x89PNG"
    saved = json.loads((tmp_path / "history.json").read_text())
    assert saved["best_value"] == outcome.best_value and len(saved["iterations"]) == 20
    bests = [h["best"] for h in outcome.history]
    assert bests == sorted(bests)  # best so far never gets worse
    assert outcome.history[-1]["spread"] < outcome.history[0]["spread"]  # the swarm contracts
    assert all(len(h["values"]) == 10 for h in outcome.history)


def test_same_seed_same_trajectory(tmp_path) -> None:
    first, _ = search(tmp_path / "a", seed=3)
    second, _ = search(tmp_path / "b", seed=3)
    other, _ = search(tmp_path / "c", seed=4)
    assert trajectory(first.history) == trajectory(second.history)
    assert trajectory(first.history) != trajectory(other.history)


def test_failed_evaluations_get_the_worst_fitness_and_are_logged(tmp_path) -> None:
    outcome, lines = search(tmp_path, objective=flaky, iterations=6, batch=8)
    assert len(outcome.history) == 6 and outcome.failures > 0
    rows = [json.loads(line) for line in (tmp_path / "evaluations.jsonl").read_text().splitlines()]
    errors = {row["error"] for row in rows if row["error"] is not None}
    assert "ValueError: x is too large" in errors and "non-finite fitness (nan)" in errors
    assert all(row["value"] is None for row in rows if row["error"] is not None)
    assert outcome.failures == sum(v is None for h in outcome.history for v in h["values"])
    assert any(re.search(r"particle \d+ failed: ValueError: x is too large", x) for x in lines)
    best = outcome.best_settings  # a failure never becomes the best
    assert best["x"] <= 0.5 and best["y"] <= 0.5 and math.isfinite(outcome.best_value)


def test_cache_and_state_mean_a_rerun_evaluates_nothing(tmp_path) -> None:
    counting = Counting()
    first, _ = search(tmp_path, objective=counting)
    assert counting.calls == first.evaluations == 30
    again, _ = search(tmp_path, objective=counting)  # finished state: nothing left to do
    (tmp_path / "search-state.json").unlink()
    cached, _ = search(tmp_path, objective=counting)  # from scratch, every value from the cache
    assert counting.calls == 30 and again.evaluations == cached.evaluations == 0
    assert cached.cache_hits == 30
    assert trajectory(again.history) == trajectory(cached.history) == trajectory(first.history)


def test_equal_settings_in_one_batch_are_evaluated_once(tmp_path) -> None:
    space, counting = SearchSpace([IntParam("n", 1, 3)]), Counting(lambda s: float(s["n"]))
    optimizer = build_optimizer("random", 1, iterations=2, batch_size=6, seed=0)
    outcome = run_search(optimizer, space, counting, SequentialExecutor(), tmp_path, lambda _: 0)
    assert counting.calls == outcome.evaluations <= 3 and outcome.best_settings == {"n": 3}


@pytest.mark.parametrize("name", ["pso", "random", "tpe", "cma"])
def test_resume_after_a_crash_equals_an_uninterrupted_search(tmp_path, name) -> None:
    reference, _ = search(tmp_path / "whole", name=name)
    crashing = Counting(crash_after=13)  # in the middle of the third iteration (batch 5)
    with pytest.raises(Crash):
        search(tmp_path / "resumed", objective=crashing, name=name)
    state = json.loads((tmp_path / "resumed" / "search-state.json").read_text())
    assert state["iteration"] == 2
    rest = Counting()
    resumed, _ = search(tmp_path / "resumed", objective=rest, name=name)
    assert trajectory(resumed.history) == trajectory(reference.history)
    assert resumed.best_settings == reference.best_settings
    assert rest.calls == reference.evaluations - 13  # finished particles came from the cache


def test_resume_refuses_another_search_space(tmp_path) -> None:
    search(tmp_path, iterations=1)
    other = SearchSpace([FloatParam("x", 0.0, 1.0)])
    with pytest.raises(CheckpointError, match="another search space"):
        run_search(build_optimizer("pso", 1, 1, 5), other, sphere, SequentialExecutor(), tmp_path)


# samplers -------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["random", "tpe", "cma"])
def test_samplers_run_through_the_runner(tmp_path, name) -> None:
    outcome, _ = search(tmp_path, name=name, iterations=8, batch=5)
    assert outcome.evaluations == 40 and len(outcome.history) == 8
    assert outcome.best_value > -0.3 and (tmp_path / "best.yaml").exists()


def tell_all(optimizer, stop_after: int | None = None, fail_particle: int | None = None):
    """Ask and tell until done (or ``stop_after`` tells) on a sphere centred at 0.3."""
    told = 0
    while not optimizer.done:
        for trial in optimizer.ask():
            if told == stop_after:
                return optimizer
            value = -float(np.sum((trial.position - 0.3) ** 2))
            optimizer.tell(trial, None if trial.particle == fail_particle else value)
            told += 1
    return optimizer


@pytest.mark.parametrize("name", ["tpe", "cma"])
def test_model_based_sampler_state_round_trips_mid_iteration(name: str) -> None:
    def run(optimizer, stop_after: int | None = None):
        return tell_all(optimizer, stop_after, fail_particle=1)  # some failures

    whole = run(build_optimizer(name, 2, iterations=5, batch_size=4, seed=1))
    half = run(build_optimizer(name, 2, iterations=5, batch_size=4, seed=1), stop_after=10)
    state = json.loads(json.dumps(half.state_dict()))
    resumed = build_optimizer(name, 2, iterations=5, batch_size=4, seed=1)
    resumed.load_state_dict(state)
    run(resumed)
    assert resumed.history == whole.history and resumed.best_value == whole.best_value
    np.testing.assert_array_equal(resumed.best_position, whole.best_position)


@pytest.mark.parametrize("name", ["pso", "random", "tpe", "cma"])
def test_start_points_are_evaluated_first_and_as_given(name: str) -> None:
    """The first iteration evaluates the start points in its first slots, exactly, and told
    values reach the optimizer's model: a start point at the optimum is the best found."""
    start = np.array([[0.3, 0.3], [0.9, 0.1]])
    optimizer = build_optimizer(name, 2, iterations=3, batch_size=4, seed=0, start=start)
    first = optimizer.ask()
    np.testing.assert_array_equal([t.position for t in first[:2]], start)
    assert not np.allclose([t.position for t in first[2:]], start)
    while not optimizer.done:
        for trial in optimizer.ask():
            optimizer.tell(trial, -float(np.sum((trial.position - 0.3) ** 2)))
    assert optimizer.best_value == 0.0
    np.testing.assert_array_equal(optimizer.best_position, start[0])


@pytest.mark.parametrize("name", ["pso", "random", "tpe", "cma"])
def test_start_points_leave_the_other_first_proposals_alone(name: str) -> None:
    plain = build_optimizer(name, 2, iterations=1, batch_size=4, seed=2).ask()
    started = build_optimizer(name, 2, 1, 4, seed=2, start=np.array([[0.5, 0.5]])).ask()
    if name in ("pso", "random"):  # the same draws; only the first slot is replaced
        rest = [t.position for t in started[1:]]
        np.testing.assert_array_equal(rest, [t.position for t in plain[1:]])
    assert len(started) == len(plain) == 4


@pytest.mark.parametrize("name", ["pso", "random", "tpe", "cma"])
def test_a_resumed_search_keeps_its_start_points_and_refuses_others(name: str) -> None:
    start = np.array([[0.2, 0.8]])
    whole = tell_all(build_optimizer(name, 2, iterations=3, batch_size=4, seed=1, start=start))
    half = tell_all(build_optimizer(name, 2, 3, 4, seed=1, start=start), stop_after=2)
    state = json.loads(json.dumps(half.state_dict()))
    resumed = build_optimizer(name, 2, 3, 4, seed=1, start=start)
    resumed.load_state_dict(state)
    assert tell_all(resumed).history == whole.history
    with pytest.raises(CheckpointError, match="start points|different sampler or setup"):
        build_optimizer(name, 2, 3, 4, seed=1, start=np.array([[0.6, 0.6]])).load_state_dict(state)
    with pytest.raises(CheckpointError, match="start points|different sampler or setup"):
        build_optimizer(name, 2, 3, 4, seed=1).load_state_dict(state)


@pytest.mark.parametrize(
    ("start", "message"),
    [
        ([[0.5]], r"shape \(k, 2\)"),
        ([[0.5, 0.5]] * 5, "more than the 4 evaluated per iteration"),
        ([[0.5, 1.5]], "unit cube"),
        ([[0.5, float("nan")]], "unit cube"),
    ],
)
def test_bad_start_points_are_refused(start, message) -> None:
    for name in ("pso", "random"):
        with pytest.raises(ConfigError, match=message):
            build_optimizer(name, 2, iterations=1, batch_size=4, start=np.array(start))


def test_cma_learns_where_the_optimum_is() -> None:
    """CMA-ES's later batches gather near a sphere's optimum that its first batch missed."""
    cma = build_optimizer("cma", 3, iterations=12, batch_size=8, seed=0)
    batches = []
    while not cma.done:
        trials = cma.ask()
        batches.append(np.array([t.position for t in trials]))
        for trial in trials:
            cma.tell(trial, -float(np.sum((trial.position - 0.2) ** 2)))
    distance = [float(np.linalg.norm(b - 0.2, axis=1).mean()) for b in batches]
    assert distance[-1] < 0.6 * distance[0] and cma.best_value > -0.05
    assert all(b.min() >= 0.0 and b.max() <= 1.0 for b in batches)


def test_unknown_optimizer_and_executor_names_list_the_valid_ones() -> None:
    with pytest.raises(ConfigError, match=r"\['cma', 'pso', 'random', 'tpe'\]"):
        build_optimizer("annealing", 2, 1, 1)
    with pytest.raises(ConfigError, match=r"\['process', 'ray', 'sequential'\]"):
        build_executor("dask")
    with pytest.raises(ConfigError, match="workers"):
        build_executor("process", workers=0)
    with pytest.raises(ConfigError, match=r"\['cores'\]; valid options: \['threads_per_worker',"):
        build_executor("process", cores=2)


def test_missing_extras_fail_with_the_install_command(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # makes `import ray` raise ImportError
    monkeypatch.setitem(sys.modules, "optuna", None)
    with pytest.raises(ConfigError, match=r"pip install 'ganpso\[ray\]'"):
        build_executor("ray")
    with pytest.raises(ConfigError, match=r"pip install 'ganpso\[optuna\]'"):
        build_optimizer("tpe", 2, 1, 1)


# executors ------------------------------------------------------------------------------------


def test_evaluate_turns_exceptions_and_non_finite_values_into_failures() -> None:
    assert evaluate_item(sphere, POINTS[0]).value == sphere(POINTS[0])
    assert evaluate_item(flaky, POINTS[1]).error == "ValueError: x is too large"
    assert evaluate_item(flaky, POINTS[2]).error == "non-finite fitness (nan)"
    assert evaluate_item(lambda _: "abc", None).error.startswith("ValueError: could not convert")
    with pytest.raises(Crash):
        evaluate_item(Counting(crash_after=0), POINTS[0])


def _summary(outcomes) -> list:
    return [(o.value, o.error) for o in outcomes]


def test_process_pool_gives_the_sequential_values(tmp_path) -> None:
    expected = _summary(SequentialExecutor().map(flaky, POINTS))
    heard: list[int] = []
    with ProcessPoolExecutor(workers=2, threads_per_worker=1) as pool:
        assert _summary(pool.map(flaky, POINTS, on_result=lambda i, _: heard.append(i))) == expected
        assert [o.value for o in pool.map(torch_threads, [0, 1])] == [1.0, 1.0]
        parallel, _ = search(tmp_path / "pool", executor=pool, iterations=2, batch=4)
    assert sorted(heard) == [0, 1, 2, 3]
    sequential, _ = search(tmp_path / "seq", iterations=2, batch=4)
    assert trajectory(parallel.history) == trajectory(sequential.history)


@pytest.fixture(scope="module")
def ray_executor():
    """One local Ray for the module: starting it takes seconds."""
    ray = pytest.importorskip("ray")
    if ray.is_initialized():
        pytest.skip("Ray is already running in this process")
    # the workers cannot import this test module by name: ship its functions by value
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # no reporting from a test
    executor = RayExecutor(workers=2, threads_per_worker=1)  # starts ray.init(num_cpus=2)
    yield executor
    executor.close()
    ray.cloudpickle.unregister_pickle_by_value(sys.modules[__name__])
    assert not ray.is_initialized()  # it shut down the Ray it started


def test_ray_gives_the_sequential_values(ray_executor) -> None:
    expected = _summary(SequentialExecutor().map(flaky, POINTS))
    assert _summary(ray_executor.map(flaky, POINTS)) == expected
    assert [o.value for o in ray_executor.map(torch_threads, [0])] == [1.0]
