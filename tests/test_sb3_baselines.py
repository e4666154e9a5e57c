"""SB3 baselines (agents/baselines/sb3_agents.py): seeding, budgets, saved model (SPEC B2, B6)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from agents.baselines.sb3_agents import (
    CHECKPOINT_NAME,
    HYPERPARAMS,
    PROGRESS_FIELDS,
    SB3_ALGORITHMS,
    resolve_hyperparams,
    train_sb3_baseline,
)
from agents.checkpoints import CheckpointError
from agents.training_utils import CsvLog

FAST = {"recurrent_ppo": {"n_steps": 16}, "ppo": {"n_steps": 16}, "dqn": {"learning_starts": 50}}


def _train(algo: str, out_dir: Path, seed: int = 0, episodes: int | None = 30, timesteps: int | None = None,
           **kwargs: object) -> dict:
    return train_sb3_baseline(
        algo, "HierGrid-v0", episodes, timesteps, seed, 15, 4, out_dir, False, hyperparam_overrides=FAST[algo], **kwargs
    )


def _same_weights(path_a: Path, path_b: Path, algo: str) -> None:
    model_a = SB3_ALGORITHMS[algo].algorithm_class.load(path_a, device="cpu")
    model_b = SB3_ALGORITHMS[algo].algorithm_class.load(path_b, device="cpu")
    for (name, tensor_a), tensor_b in zip(model_a.policy.state_dict().items(), model_b.policy.state_dict().values()):
        assert torch.equal(tensor_a, tensor_b), name


def _without_wall(curve: list[dict]) -> list[dict]:
    return [{k: v for k, v in point.items() if k != "wall_s"} for point in curve]


GRID_ALGOS = sorted(algo for algo in SB3_ALGORITHMS if "HierGrid-v0" in HYPERPARAMS[algo])
ANT_ALGOS = sorted(algo for algo in SB3_ALGORITHMS if "HierAnt-v0" in HYPERPARAMS[algo])


@pytest.mark.parametrize("algo", ["ppo_raw", "sac_privileged"])
def test_ant_baselines_are_seeded(algo: str, tmp_path: Path) -> None:
    """The ant's PPO/SAC (issue #7): same seed, same curve; raw vs privileged as labelled."""
    fast = {"n_steps": 32, "batch_size": 32, "n_envs": 2} if algo.startswith("ppo") else {"learning_starts": 50}
    runs = [train_sb3_baseline(algo, "HierAnt-v0", 2, None, 0, 2, 1, tmp_path / name, False, hyperparam_overrides=fast)
            for name in ("a", "b")]
    assert _without_wall(runs[0]["curve"]) == _without_wall(runs[1]["curve"])
    assert runs[0]["privileged"] is algo.endswith("privileged") and runs[0]["episodes"] >= 2
    assert set(ANT_ALGOS) == {"ppo", "ppo_raw", "sac", "sac_privileged"}


@pytest.mark.parametrize("algo", GRID_ALGOS)
def test_same_seed_same_curve_and_model(algo: str, tmp_path: Path) -> None:
    first = _train(algo, tmp_path / "a")
    second = _train(algo, tmp_path / "b")
    assert _without_wall(first["curve"]) == _without_wall(second["curve"])
    assert first["episodes"] >= 30 and first["episodes"] < 30 + resolve_hyperparams(algo, "HierGrid-v0")["n_envs"]
    episodes = [point["episodes"] for point in first["curve"]]
    assert episodes[0] == 0 and len(episodes) == 3  # before training, after >= 15, at the end
    assert 15 <= episodes[1] < 30 and episodes[2] >= 30
    assert first["curve"][-1]["episodes"] == first["episodes"]
    assert first["curve"][-1]["env_steps"] == first["env_steps"]
    assert first["privileged"] is (algo != "recurrent_ppo")
    saved = json.loads((tmp_path / "a" / "curve.json").read_text())
    assert saved["curve"] == first["curve"]
    progress = CsvLog(tmp_path / "a" / "progress.csv", PROGRESS_FIELDS, "episodes").read()  # written as it went
    assert [(int(row["episodes"]), int(row["env_steps"]), float(row["success_rate"])) for row in progress] == [
        (point["episodes"], point["env_steps"], point["success_rate"]) for point in first["curve"]]
    _train(algo, tmp_path / "a")  # a rerun in the same folder starts its log afresh
    assert len(CsvLog(tmp_path / "a" / "progress.csv", PROGRESS_FIELDS, "episodes").read()) == len(progress)
    _same_weights(tmp_path / "a" / "model.zip", tmp_path / "b" / "model.zip", algo)
    assert first["finished"] and not (tmp_path / "a" / CHECKPOINT_NAME).exists()


@pytest.mark.parametrize("algo", GRID_ALGOS)
def test_interrupted_run_resumes_to_the_same_curve_and_model(algo: str, tmp_path: Path) -> None:
    """SPEC B4: a run stopped mid-way and called again equals an uninterrupted one, weights included
    (training envs mid-episode, RNGs, DQN's replay buffer and RecurrentPPO's LSTM state all restored)."""
    whole = _train(algo, tmp_path / "whole", episodes=60)
    partial = _train(algo, tmp_path / "cut", episodes=60, stop_after_episodes=20)
    assert partial["finished"] is False and partial["model_path"] is None
    assert 20 <= partial["episodes"] < whole["episodes"]
    assert (tmp_path / "cut" / CHECKPOINT_NAME).exists() and not (tmp_path / "cut" / "curve.json").exists()
    resumed = _train(algo, tmp_path / "cut", episodes=60)
    assert resumed["finished"] and _without_wall(resumed["curve"]) == _without_wall(whole["curve"])
    assert (resumed["episodes"], resumed["env_steps"]) == (whole["episodes"], whole["env_steps"])
    _same_weights(tmp_path / "whole" / "model.zip", tmp_path / "cut" / "model.zip", algo)
    assert not (tmp_path / "cut" / CHECKPOINT_NAME).exists()  # deleted once the result is written
    progress = CsvLog(tmp_path / "cut" / "progress.csv", PROGRESS_FIELDS, "episodes").read()
    assert [int(row["episodes"]) for row in progress] == [point["episodes"] for point in whole["curve"]]
    assert all(later["wall_s"] >= earlier["wall_s"] for earlier, later in zip(resumed["curve"], resumed["curve"][1:]))


def test_ant_sac_resumes_exactly(tmp_path: Path) -> None:
    """The MuJoCo training env is checkpointed mid-episode too (issue #7's SAC baseline)."""
    fast = {"learning_starts": 50}

    def run(name: str, **kwargs: object) -> dict:
        return train_sb3_baseline("sac_privileged", "HierAnt-v0", 3, None, 0, 1, 1, tmp_path / name, False,
                                  hyperparam_overrides=fast, **kwargs)

    whole = run("whole")
    assert run("cut", stop_after_episodes=1)["finished"] is False
    resumed = run("cut")
    assert _without_wall(resumed["curve"]) == _without_wall(whole["curve"])
    _same_weights(tmp_path / "whole" / "model.zip", tmp_path / "cut" / "model.zip", "sac_privileged")



def test_building_a_model_leaves_the_hyperparameter_table_alone() -> None:
    """SB3's SAC writes ``use_sde`` into the ``policy_kwargs`` it is given; the table (shared by
    ``sac`` and ``sac_privileged``) must not change, or a run's stored config would depend on
    which runs came before it in the process, and its checkpoint would refuse to resume."""
    from stable_baselines3 import SAC

    from agents.baselines.sb3_agents import make_baseline_envs, resolve_hyperparams

    before = resolve_hyperparams("sac", "HierAnt-v0")
    kwargs = {k: v for k, v in before.items() if k not in ("n_envs", "policy")}
    SAC(before["policy"], make_baseline_envs("HierAnt-v0", 1, 0, False), device="cpu", **kwargs)
    assert "use_sde" in kwargs["policy_kwargs"]  # SB3 did write into what it was given
    for algo in ("sac", "sac_privileged"):
        assert "use_sde" not in resolve_hyperparams(algo, "HierAnt-v0")["policy_kwargs"]

def test_a_finished_run_is_returned_not_retrained_and_another_config_refused(tmp_path: Path) -> None:
    first = _train("ppo", tmp_path / "run")
    model_mtime = (tmp_path / "run" / "model.zip").stat().st_mtime_ns
    assert _train("ppo", tmp_path / "run") == json.loads(json.dumps(first))  # curve.json, as written
    assert (tmp_path / "run" / "model.zip").stat().st_mtime_ns == model_mtime
    with pytest.raises(CheckpointError, match="curve.json.*different SB3 run configuration"):
        _train("ppo", tmp_path / "run", seed=1)
    result = json.loads((tmp_path / "run" / "curve.json").read_text())
    del result["run_config"]  # as written before the configuration was recorded
    (tmp_path / "run" / "curve.json").write_text(json.dumps(result))
    with pytest.raises(CheckpointError, match="curve.json.*without a recorded run configuration"):
        _train("ppo", tmp_path / "run")


def test_checkpoint_of_another_run_or_corrupt_is_refused(tmp_path: Path) -> None:
    _train("ppo", tmp_path / "run", episodes=60, stop_after_episodes=20)
    with pytest.raises(CheckpointError, match=CHECKPOINT_NAME):
        _train("ppo", tmp_path / "run", seed=1, episodes=60)  # another seed: not this run's checkpoint
    checkpoint = tmp_path / "run" / CHECKPOINT_NAME
    checkpoint.write_bytes(checkpoint.read_bytes()[: checkpoint.stat().st_size // 2])
    with pytest.raises(CheckpointError, match=CHECKPOINT_NAME):
        _train("ppo", tmp_path / "run", episodes=60)


def test_timestep_budget_and_different_seed(tmp_path: Path) -> None:
    by_steps = _train("ppo", tmp_path / "steps", episodes=None, timesteps=256)
    assert by_steps["env_steps"] == 256  # 8 envs x 16 steps x 2 rollouts
    other = _train("ppo", tmp_path / "other", seed=1, episodes=None, timesteps=256)
    assert other["env_steps"] == 256
    assert _without_wall(other["curve"]) != _without_wall(by_steps["curve"])  # other layouts, other episodes


def test_bad_arguments_raise(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown SB3 algo"):
        train_sb3_baseline("a2c", "HierGrid-v0", 10, None, 0, 5, 2, tmp_path)
    with pytest.raises(ValueError, match="no ppo hyperparameters"):
        train_sb3_baseline("ppo", "CartPole-v1", 10, None, 0, 5, 2, tmp_path)
    with pytest.raises(ValueError, match="neither"):
        train_sb3_baseline("ppo", "HierGrid-v0", None, None, 0, 5, 2, tmp_path)
    with pytest.raises(ValueError, match="total_episodes"):
        train_sb3_baseline("ppo", "HierGrid-v0", 0, None, 0, 5, 2, tmp_path)
    with pytest.raises(ValueError, match="seed"):
        train_sb3_baseline("ppo", "HierGrid-v0", 10, None, -1, 5, 2, tmp_path)
    with pytest.raises(ValueError, match="checkpoint_every_s"):
        train_sb3_baseline("ppo", "HierGrid-v0", 10, None, 0, 5, 2, tmp_path, checkpoint_every_s=-1.0)
    with pytest.raises(ValueError, match="stop_after_episodes"):
        train_sb3_baseline("ppo", "HierGrid-v0", 10, None, 0, 5, 2, tmp_path, stop_after_episodes=0)
    assert set(HYPERPARAMS) == set(SB3_ALGORITHMS)
