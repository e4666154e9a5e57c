"""Ant expert: locomotion features and weights, the grid-level planner, ant datasets (SPEC B3)."""

import dataclasses
import json
import math

import gymnasium as gym
import mujoco
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env

import hier_envs  # noqa: F401  (registers the ids)
from hier_envs.ant import HierAntEnv
from hier_envs.datasets import DatasetError, generate_ant_dataset, load_dataset, save_dataset
from hier_envs.experts.ant_direction_env import AntDirectionEnv
from hier_envs.experts.ant_expert import UNREACHABLE, AntExpert, cell_distances, evaluate_ant_expert
from hier_envs.experts.ant_locomotion import (
    N_FEATURES,
    WEIGHTS_PATH,
    LocomotionPolicy,
    locomotion_features,
    torso_yaw,
    weights_sha256,
)

ROW_LAYOUT = {"walls": [(2, 2)], "colors": [(0, 0), (0, 1), (0, 2), (0, 3)], "agent": (3, 0)}


def random_policy(seed: int = 0, hidden: int = 16) -> LocomotionPolicy:
    """An untrained policy with the shipped file's structure (the tests must not need trained weights)."""
    rng = np.random.default_rng(seed)
    arrays = {
        "obs_mean": rng.normal(size=N_FEATURES), "obs_var": rng.uniform(0.5, 2.0, size=N_FEATURES),
        "w0": rng.normal(size=(N_FEATURES, hidden)) / 5, "b0": rng.normal(size=hidden) / 5,
        "w_out": rng.normal(size=(hidden, 8)) / 5, "b_out": np.zeros(8), "log_std": np.full(8, -1.0),
    }
    return LocomotionPolicy(arrays, {"sha256": weights_sha256(arrays)})


def rotate_state_about_z(qpos: np.ndarray, qvel: np.ndarray, angle: float) -> tuple[np.ndarray, np.ndarray]:
    """The same ant state seen after turning the world by ``angle`` about the vertical axis."""
    c, s = math.cos(angle), math.sin(angle)
    qpos, qvel = qpos.copy(), qvel.copy()
    qpos[0:2] = (c * qpos[0] - s * qpos[1], s * qpos[0] + c * qpos[1])
    w, x, y, z = qpos[3:7]
    rw, rz = math.cos(angle / 2), math.sin(angle / 2)  # (rw, 0, 0, rz) ⊗ q
    qpos[3:7] = (rw * w - rz * z, rw * x - rz * y, rw * y + rz * x, rw * z + rz * w)
    qvel[0:2] = (c * qvel[0] - s * qvel[1], s * qvel[0] + c * qvel[1])
    return qpos, qvel


# ------------------------------------------------------------------------ features
def test_features_are_yaw_invariant_and_see_the_command():
    env = AntDirectionEnv()
    env.reset(seed=1)
    for _ in range(20):
        env.step(env.action_space.sample())
    qpos, qvel = env.data.qpos.copy(), env.data.qvel.copy()
    direction = np.array([0.6, -0.8])
    features = locomotion_features(qpos, qvel, direction)
    assert features.shape == (N_FEATURES,)
    for angle in (0.7, -2.0, math.pi):
        rotated_pos, rotated_vel = rotate_state_about_z(qpos, qvel, angle)
        c, s = math.cos(angle), math.sin(angle)
        rotated_dir = np.array([c * direction[0] - s * direction[1], s * direction[0] + c * direction[1]])
        np.testing.assert_allclose(locomotion_features(rotated_pos, rotated_vel, rotated_dir), features, atol=1e-9)
        assert torso_yaw(rotated_pos) == pytest.approx(math.remainder(torso_yaw(qpos) + angle, 2 * math.pi), abs=1e-9)
    # The command enters only its last two features, as a unit vector in the heading frame.
    other = locomotion_features(qpos, qvel, -3 * direction)
    np.testing.assert_allclose(other[:26], features[:26])
    np.testing.assert_allclose(other[26:], -features[26:])
    assert np.hypot(*features[26:]) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="2-vector"):  # a third component would be dropped silently
        locomotion_features(qpos, qvel, np.array([1.0, 0.0, 99.0]))


@pytest.mark.parametrize("direction", [(0.0, 0.0), (np.nan, 1.0), (np.inf, 0.0)])
def test_features_reject_a_bad_direction(direction):
    with pytest.raises(ValueError, match="direction_xy"):
        locomotion_features(np.zeros(15), np.zeros(14), np.array(direction))


def test_direction_env_passes_the_checker_and_is_deterministic():
    gym_check_env(AntDirectionEnv(max_steps=50), skip_render_check=True)
    runs = []
    for _ in range(2):
        env = AntDirectionEnv(max_steps=50)
        env.action_space.seed(3)
        obs, _ = env.reset(seed=7)
        trace = [obs]
        for _ in range(50):
            obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
            trace.append(np.append(obs, reward))
            if terminated or truncated:
                break
        runs.append(np.concatenate(trace))
    np.testing.assert_array_equal(runs[0], runs[1])


def _slide(env: AntDirectionEnv, command: tuple[float, float], velocity: tuple[float, float]):
    """One zero-torque step from reset with a pinned command and an initial sliding velocity."""
    env.reset(seed=0)
    env.direction = np.array(command)
    env.next_command = 10**9
    env.data.qvel[:] = 0.0
    env.data.qvel[0:2] = velocity
    _, reward, _, _, info = env.step(np.zeros(8))
    return reward, info


def test_direction_env_rewards_motion_along_the_command():
    env = AntDirectionEnv()
    reward, info = _slide(env, (1.0, 0.0), (2.0, 0.0))
    assert info["velocity_along"] > 0.5 and abs(info["velocity_across"]) < 0.3 * info["velocity_along"]
    reward_away, info_away = _slide(env, (-1.0, 0.0), (2.0, 0.0))
    assert info_away["velocity_along"] < -0.5 and reward_away < reward
    # Sliding across the command (to its left: +y for a +x command) costs lateral_cost_weight per m/s.
    reward_across, info_across = _slide(env, (1.0, 0.0), (0.0, 2.0))
    assert info_across["velocity_across"] > 0.5
    free = AntDirectionEnv(lateral_cost_weight=0.0)
    reward_free, info_free = _slide(free, (1.0, 0.0), (0.0, 2.0))
    assert info_free["velocity_across"] == pytest.approx(info_across["velocity_across"])
    assert reward_free - reward_across == pytest.approx(abs(info_across["velocity_across"]))


@pytest.mark.parametrize("kwargs", [{"max_steps": 0}, {"lateral_cost_weight": -1.0}, {"lateral_cost_weight": "1"}])
def test_direction_env_rejects_bad_arguments(kwargs):
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        AntDirectionEnv(**kwargs)


# ------------------------------------------------------------------------- weights
def test_policy_mean_sample_and_clip():
    policy = random_policy()
    features = np.random.default_rng(0).normal(size=(5, N_FEATURES))
    mean = policy.act(features, deterministic=True)
    assert mean.shape == (5, 8) and np.all(np.abs(mean) <= 1.0)
    a = policy.act(features, False, np.random.default_rng(1))
    b = policy.act(features, False, np.random.default_rng(1))
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, mean)
    with pytest.raises(ValueError, match="rng"):
        policy.act(features, deterministic=False)


def test_training_smoke_exports_what_sb3_predicts(tmp_path):
    from stable_baselines3 import PPO
    from stable_baselines3.common.vec_env import VecNormalize

    from hier_envs.experts.train_ant_locomotion import PRESETS, _latest_checkpoint, _make_vec_env, export_latest, train

    config = PRESETS["smoke"]
    weights = train(config, tmp_path / "run", tmp_path / "w.npz", progress=False)
    policy = LocomotionPolicy.load(weights)
    assert policy.meta["num_timesteps"] == config.total_steps
    model_path, normaliser = _latest_checkpoint(tmp_path / "run")
    venv = VecNormalize.load(str(normaliser), _make_vec_env(config))
    venv.training = False
    model = PPO.load(str(model_path), env=venv, device="cpu")
    features = np.random.default_rng(0).normal(size=(6, N_FEATURES)).astype(np.float32) * 4
    expected, _ = model.predict(venv.normalize_obs(features), deterministic=True)
    np.testing.assert_allclose(policy.act(features.astype(np.float64), True), expected, atol=1e-5)
    # Training stops at exactly total_steps (1,000: inside the second 512-step rollout), so the
    # final weights are the checkpoint taken at that step, and re-exporting it gives the same file.
    assert model_path.name == "ppo_1000_steps.zip"
    again = LocomotionPolicy.load(export_latest(config, tmp_path / "run", tmp_path / "w2.npz"))
    assert again.meta["sha256"] == policy.meta["sha256"]
    checkpoint_500 = tmp_path / "at500" / "checkpoints"
    checkpoint_500.mkdir(parents=True)
    for name in ("ppo_500_steps.zip", "ppo_vecnormalize_500_steps.pkl"):
        (checkpoint_500 / name).symlink_to(tmp_path / "run" / "checkpoints" / name)
    fresh = train(dataclasses.replace(config, total_steps=500), tmp_path / "fresh", tmp_path / "w500.npz", progress=False)
    mid = LocomotionPolicy.load(export_latest(config, tmp_path / "at500", tmp_path / "mid.npz"))
    assert LocomotionPolicy.load(fresh).meta["sha256"] == mid.meta["sha256"]
    with pytest.raises(ValueError, match="another config"):
        train(dataclasses.replace(config, seed=99), tmp_path / "run", tmp_path / "w3.npz", progress=False)


def test_training_exports_the_checkpoint_the_expert_scores_best(tmp_path, monkeypatch):
    """``select_episodes``: every checkpoint drives the expert on the pretraining tasks and the
    best is exported, not the last (the rerun in results/ant_locomotion_rerun peaked at 400k of 800k)."""
    from hier_envs.experts import ant_expert
    from hier_envs.experts.train_ant_locomotion import PRESETS, export_latest, export_selected, train

    config = dataclasses.replace(PRESETS["smoke"], select_episodes=1)
    real_evaluate = ant_expert.evaluate_ant_expert
    calls = []

    def scripted(env_id, n_episodes, seed, policy=None):
        result = real_evaluate(env_id, n_episodes, seed, policy=policy)  # the real expert runs ...
        calls.append((env_id, n_episodes, seed, policy.meta["num_timesteps"]))
        return {**result, "success_rate": 0.5 if policy.meta["num_timesteps"] == 500 else 0.25}  # ... scores scripted

    monkeypatch.setattr(ant_expert, "evaluate_ant_expert", scripted)
    weights = LocomotionPolicy.load(train(config, tmp_path / "run", tmp_path / "w.npz", progress=False))
    assert calls == [("HierAnt-Pretrain-v0", 1, 0, 500), ("HierAnt-Pretrain-v0", 1, 0, 1000)]  # never HierAnt-v0
    assert weights.meta["num_timesteps"] == 500
    assert [(row["steps"], row["selected"]) for row in weights.meta["selection"]] == [(500, True), (1000, False)]
    assert json.loads((tmp_path / "run" / "selection.json").read_text())["checkpoints"] == weights.meta["selection"]
    at500 = tmp_path / "at500" / "checkpoints"
    at500.mkdir(parents=True)
    for name in ("ppo_500_steps.zip", "ppo_vecnormalize_500_steps.pkl"):
        (at500 / name).symlink_to(tmp_path / "run" / "checkpoints" / name)
    exported = LocomotionPolicy.load(export_latest(config, tmp_path / "at500", tmp_path / "w500.npz"))
    assert exported.meta["sha256"] == weights.meta["sha256"]  # the 500-step checkpoint, exactly
    # --export-only makes the same choice from the same folder
    assert LocomotionPolicy.load(export_selected(config, tmp_path / "run", tmp_path / "e.npz")).meta["sha256"] \
        == weights.meta["sha256"]
    # the selection fields do not identify the run: the folder accepts other values (and an older
    # config.json without them), and 0 exports the last checkpoint
    stored = json.loads((tmp_path / "run" / "config.json").read_text())
    for key in ("select_episodes", "select_seed"):
        stored.pop(key)
    (tmp_path / "run" / "config.json").write_text(json.dumps(stored))
    last = LocomotionPolicy.load(train(dataclasses.replace(config, select_episodes=0), tmp_path / "run",
                                       tmp_path / "last.npz", progress=False))
    assert last.meta["num_timesteps"] == 1000 and "selection" not in last.meta
    with pytest.raises(ValueError, match="select_episodes"):
        dataclasses.replace(config, select_episodes=-1)


def test_checkpoint_selection_breaks_ties_toward_the_later_checkpoint(tmp_path, monkeypatch):
    from hier_envs.experts import ant_expert
    from hier_envs.experts.train_ant_locomotion import PRESETS, select_checkpoint, train

    config = PRESETS["smoke"]
    train(config, tmp_path / "run", tmp_path / "w.npz", progress=False)  # checkpoints at 500 and 1,000 steps
    monkeypatch.setattr(ant_expert, "evaluate_ant_expert",
                        lambda env_id, n, seed, policy=None: {"success_rate": 0.5, "outcomes": {"success": n}})
    (model_path, _), records = select_checkpoint(dataclasses.replace(config, select_episodes=3), tmp_path / "run")
    assert model_path.name == "ppo_1000_steps.zip" and [r["selected"] for r in records] == [False, True]


def test_weights_file_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="train_ant_locomotion"):
        LocomotionPolicy.load(tmp_path / "missing.npz")
    policy = random_policy()
    arrays = {"obs_mean": policy.obs_mean, "obs_var": policy.obs_std**2 - 1e-8, "w0": policy.hidden[0][0],
              "b0": policy.hidden[0][1], "w_out": policy.w_out, "b_out": policy.b_out, "log_std": np.log(policy.std)}
    meta = {"sha256": weights_sha256(arrays)}
    good = tmp_path / "good.npz"
    np.savez(good, meta=np.array(json.dumps(meta)), **arrays)
    LocomotionPolicy.load(good)
    tampered = dict(arrays, b_out=arrays["b_out"] + 1.0)
    bad = tmp_path / "tampered.npz"
    np.savez(bad, meta=np.array(json.dumps(meta)), **tampered)
    with pytest.raises(ValueError, match="sha256"):
        LocomotionPolicy.load(bad)
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(good.read_bytes()[:200])
    with pytest.raises(ValueError, match="truncated.npz"):
        LocomotionPolicy.load(truncated)


# ------------------------------------------------------------------------- planner
def test_cell_distances_go_around_blocked_cells():
    blocked = np.zeros(16, dtype=bool)
    blocked[[1, 5, 9]] = True  # a wall down column 1, rows 0-2
    distances = cell_distances(4, blocked, target=0)
    assert distances[0] == 0 and distances[4] == 1 and distances[12] == 3
    assert distances[13] == 4 and distances[2] == 8  # around the bottom of the wall
    assert all(distances[cell] == UNREACHABLE for cell in (1, 5, 9))
    sealed = blocked.copy()
    sealed[[13]] = True
    sealed[[12]] = True
    assert cell_distances(4, sealed, target=0)[3] == UNREACHABLE


def _pinned_env(layout=ROW_LAYOUT, task=(0, 1, 2, 3)) -> HierAntEnv:
    env = HierAntEnv()
    env.reset(seed=0, options={"layout": layout, "task": list(task)})
    return env


def _teleport(env: HierAntEnv, row: int, col: int, dx: float = 0.0, dy: float = 0.0) -> None:
    x, y = env.cell_center(row, col)
    env.data.qpos[0:2] = (x + dx, y + dy)
    mujoco.mj_forward(env.model, env.data)
    env.agent_cell = env.cell_index(x + dx, y + dy)


def test_paths_are_shortest_and_go_around_blocked_cells():
    env = _pinned_env()
    expert = AntExpert(policy=random_policy())
    # Start (3, 0) -> colour 0 at (0, 0): straight up column 0 (colours sit on row 0 only).
    assert expert.path(env) == [12, 8, 4, 0]
    # Going to colour 2 at (0, 2) from (1, 0): colours 0, 1 block row 0, so along row 1 first.
    _teleport(env, 1, 0)
    env.progress.enter(0)
    env.progress.enter(1)
    assert env.progress.next_color == 2
    assert expert.path(env) == [4, 5, 6, 2]


def test_path_walks_off_a_just_visited_colour():
    """Regression: the torso's own cell was blocked when it was a colour (just visited), so the
    planner fell back to a straight line through other cells and the ant walked into wrong colours."""
    env = _pinned_env(task=(0, 2, 1, 3))
    expert = AntExpert(policy=random_policy())
    _teleport(env, 0, 0)  # standing on colour 0, now visited; colour 2 at (0, 2) is next, colour 1 between
    env.progress.enter(0)
    assert env.progress.next_color == 2
    path = expert.path(env)
    assert path == [0, 4, 5, 6, 2]
    assert all(abs(a - b) in (1, 4) for a, b in zip(path, path[1:]))  # neighbours only


def test_waypoint_is_pure_pursuit_along_the_cell_centres():
    env = _pinned_env()
    expert = AntExpert(policy=random_policy(), lookahead=0.8)
    _teleport(env, 3, 0)  # path 12 -> 8 -> 4 -> 0, straight up
    np.testing.assert_allclose(expert.waypoint(env), np.add(env.cell_center(3, 0), (0.0, 0.8)))
    _teleport(env, 3, 0, dx=0.5, dy=0.3)  # off the centre line: aim back onto it, 0.8 m ahead of the projection
    np.testing.assert_allclose(expert.waypoint(env), np.add(env.cell_center(3, 0), (0.0, 1.1)))
    np.testing.assert_allclose(np.hypot(*expert.direction(env)), 1.0)
    # Around a corner: the path 5 -> 6 -> 2 turns up at the centre of (1, 2); from 0.5 m past
    # the centre of (1, 1), a 1.8 m lookahead reaches 0.3 m up the second segment.
    env.progress.enter(0)
    env.progress.enter(1)
    _teleport(env, 1, 1, dx=0.5)
    assert expert.path(env) == [5, 6, 2]
    corner = AntExpert(policy=random_policy(), lookahead=1.8)
    np.testing.assert_allclose(corner.waypoint(env), np.add(env.cell_center(1, 2), (0.0, 0.3)))
    np.testing.assert_allclose(expert.waypoint(env), np.add(env.cell_center(1, 1), (1.3, 0.0)))
    # Past the last centre the waypoint stays at the target cell's centre.
    far = AntExpert(policy=random_policy(), lookahead=50.0)
    np.testing.assert_allclose(far.waypoint(env), env.cell_center(0, 2))


def test_ties_go_to_the_nearer_neighbour():
    layout = {"walls": [(3, 3)], "colors": [(0, 0), (3, 0), (0, 3), (2, 3)], "agent": (1, 1)}
    env = _pinned_env(layout)
    expert = AntExpert(policy=random_policy())
    _teleport(env, 1, 1, dx=-0.6, dy=0.3)  # two shortest next cells, (0, 1) and (1, 0); (1, 0) is nearer
    assert expert.path(env) == [5, 4, 0]
    _teleport(env, 1, 1, dx=0.3, dy=0.6)  # now (0, 1) is nearer
    assert expert.path(env) == [5, 1, 0]


def test_expert_refuses_other_envs_and_unreset_envs():
    expert = AntExpert(policy=random_policy())
    with pytest.raises(TypeError, match="HierAnt"):
        expert.act(gym.make("HierGrid-v0"))
    with pytest.raises(RuntimeError, match="reset"):
        expert.act(HierAntEnv())
    with pytest.raises(TypeError, match="deterministic"):
        AntExpert(deterministic=1, policy=random_policy())
    with pytest.raises(ValueError, match="lookahead"):
        AntExpert(policy=random_policy(), lookahead=0.0)


# ------------------------------------------------------------------------ datasets
@pytest.fixture(scope="module")
def random_weights(tmp_path_factory):
    policy = random_policy(seed=4)
    arrays = {"obs_mean": policy.obs_mean, "obs_var": policy.obs_std**2 - 1e-8, "w0": policy.hidden[0][0],
              "b0": policy.hidden[0][1], "w_out": policy.w_out, "b_out": policy.b_out, "log_std": np.log(policy.std)}
    path = tmp_path_factory.mktemp("weights") / "random.npz"
    np.savez(path, meta=np.array(json.dumps({"sha256": weights_sha256(arrays)})), **arrays)
    return path


def test_ant_dataset_round_trip_and_determinism(random_weights, tmp_path):
    kwargs = dict(n_episodes=2, seed=5, only_success=False, progress=False, weights=random_weights)
    sampled = generate_ant_dataset(sample_actions=True, **kwargs)
    assert sampled.metadata["kind"] == "ant" and sampled.obs_dim == 41
    assert sampled.actions.shape == (sampled.n_steps, 8) and sampled.actions.dtype == np.float32
    assert sampled.observations.shape == (sampled.n_steps + 2, 41)
    assert set(np.unique(sampled.subgoals)) <= {0, 1, 2, 3}
    assert sampled.sha256 == generate_ant_dataset(sample_actions=True, **kwargs).sha256
    mean = generate_ant_dataset(sample_actions=False, **kwargs)
    assert mean.sha256 != sampled.sha256
    assert mean.metadata["generator"]["actions"] == "mean"
    path = save_dataset(sampled, tmp_path / "ant.npz")
    loaded = load_dataset(path)
    np.testing.assert_array_equal(loaded.actions, sampled.actions)
    np.testing.assert_array_equal(loaded.observations, sampled.observations)
    # The first stored observation is the env's reset observation for that seed.
    env = gym.make("HierAnt-Pretrain-v0")
    obs, info = env.reset(seed=5)
    np.testing.assert_array_equal(loaded.observations[0], obs)
    assert loaded.subgoals[0] == info["subgoal"]
    truncated = tmp_path / "cut.npz"
    truncated.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(DatasetError, match="cut.npz"):
        load_dataset(truncated)


def test_ant_dataset_cli(random_weights, tmp_path, capsys):
    from hier_envs.datasets import main

    out = tmp_path / "cli.npz"
    assert main(["ant", "--episodes", "1", "--keep-failures", "--sample", "--seed", "2", "--out", str(out),
                 "--weights", str(random_weights), "--no-progress"]) == 0
    dataset = load_dataset(out)
    assert dataset.metadata["generator"]["actions"] == "sampled" and dataset.n_episodes == 1
    assert "HierAnt-Pretrain-v0 (kind ant)" in capsys.readouterr().out


def test_ant_dataset_bad_arguments(random_weights):
    with pytest.raises(ValueError, match="n_episodes"):
        generate_ant_dataset(0, True, 0, weights=random_weights)
    with pytest.raises(ValueError, match="HierGrid-v0"):
        generate_ant_dataset(1, True, 0, env_id="HierGrid-v0", weights=random_weights)
    with pytest.raises(TypeError, match="sample_actions"):
        generate_ant_dataset(1, "yes", 0, weights=random_weights)
    with pytest.raises(RuntimeError, match="successful episodes"):
        generate_ant_dataset(1, False, 0, max_attempts=1, progress=False, weights=random_weights)


# ---------------------------------------------------------------- shipped expert
shipped = pytest.mark.skipif(not WEIGHTS_PATH.is_file(), reason="no shipped locomotion weights")


@shipped
def test_shipped_expert_walks_to_the_first_colour():
    stats = evaluate_ant_expert("HierAnt-Pretrain-v0", 8, seed=11)
    assert stats["mean_colors_visited"] >= 1.0, stats


@shipped
@pytest.mark.slow
@pytest.mark.parametrize("env_id, threshold", [("HierAnt-Pretrain-v0", 0.8), ("HierAnt-v0", 0.6)])
def test_shipped_expert_success(env_id, threshold):
    stats = evaluate_ant_expert(env_id, 200, seed=1)  # the stream of results/ant_expert.json
    assert stats["success_rate"] >= threshold, stats


def test_ant_padded_batch_matches_episodes_and_leaves_the_data_untouched(random_weights):
    """Float32 observations take the same padded-frame path as the grid's packed bits
    (``EpisodeDataset._padded_observations``); batching must not write into the dataset."""
    data = generate_ant_dataset(3, True, seed=6, only_success=False, progress=False, weights=random_weights)
    before = data.sha256
    indices = np.array([2, 0, 2])
    for max_len in (None, 7):
        batch = data.padded_batch(indices, max_len)
        for row, index in enumerate(indices):
            episode = data.episode(int(index))
            n = int(batch["lengths"][row])
            np.testing.assert_array_equal(batch["observations"][row, :n], episode["observations"][:n])
            np.testing.assert_array_equal(batch["next_observations"][row, :n], episode["observations"][1 : n + 1])
            np.testing.assert_array_equal(batch["actions"][row, :n], episode["actions"][:n])
            assert not batch["observations"][row, n:].any() and not batch["next_observations"][row, n:].any()
    assert data.sha256 == before  # recomputed from the arrays


# ---------------------------------------------------------------- locomotion checkpoints
class _FakeModel:
    """Stands in for an SB3 model: ``save`` writes a small zip into the file it is given."""

    def __init__(self, fail_after_bytes: int | None = None) -> None:
        self.fail_after_bytes = fail_after_bytes

    def save(self, handle) -> None:
        import io
        import zipfile

        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            archive.writestr("policy.pth", b"weights" * 100)
        data = buffer.getvalue()
        if self.fail_after_bytes is not None:
            handle.write(data[: self.fail_after_bytes])
            raise KeyboardInterrupt("killed mid-write")
        handle.write(data)


def test_checkpoint_pairs_are_written_atomically(tmp_path):
    """SPEC B4 "checkpoints written atomically": a write killed midway leaves no file under a
    checkpoint name (so resume uses the previous pair) and no temporary file."""
    from hier_envs.experts.train_ant_locomotion import _latest_checkpoint, _save_checkpoint

    checkpoints = tmp_path / "run" / "checkpoints"
    pair = _save_checkpoint(_FakeModel(), {"obs_rms": [1.0, 2.0]}, checkpoints, 100)
    assert [p.name for p in pair] == ["ppo_100_steps.zip", "ppo_vecnormalize_100_steps.pkl"]
    assert _latest_checkpoint(tmp_path / "run") == pair
    with pytest.raises(KeyboardInterrupt):
        _save_checkpoint(_FakeModel(fail_after_bytes=20), {"obs_rms": [3.0]}, checkpoints, 200)
    assert not (checkpoints / "ppo_200_steps.zip").exists()
    assert sorted(p.name for p in checkpoints.iterdir()) == sorted(
        ["ppo_100_steps.zip", "ppo_vecnormalize_100_steps.pkl", "ppo_vecnormalize_200_steps.pkl"]
    )
    assert _latest_checkpoint(tmp_path / "run") == pair


def test_resume_skips_a_truncated_checkpoint_pair(tmp_path):
    """A pair truncated by a kill during an in-place write (older runs) is skipped with a warning."""
    from hier_envs.experts.train_ant_locomotion import _latest_checkpoint, _save_checkpoint

    checkpoints = tmp_path / "run" / "checkpoints"
    good = _save_checkpoint(_FakeModel(), {"obs_rms": [1.0]}, checkpoints, 100)
    (checkpoints / "ppo_200_steps.zip").write_bytes(b"PK\x03\x04 truncated")
    (checkpoints / "ppo_vecnormalize_200_steps.pkl").write_bytes(b"")
    (checkpoints / "ppo_300_steps.zip").write_bytes((checkpoints / "ppo_100_steps.zip").read_bytes())
    (checkpoints / "ppo_vecnormalize_300_steps.pkl").write_bytes(b"\x80\x04\x95")  # truncated pickle
    with pytest.warns(UserWarning, match="skipping unreadable checkpoint") as record:
        assert _latest_checkpoint(tmp_path / "run") == good
    skipped = [str(warning.message).split()[3] for warning in record]
    assert skipped == ["ppo_300_steps.zip", "ppo_200_steps.zip"]  # newest first, both refused
