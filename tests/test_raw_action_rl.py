"""Raw-action RL baseline: config, cached rollouts, clipped update, determinism, resume (SPEC A§7.1 item 1, A§6, B4)."""

import dataclasses

import numpy as np
import pytest
import torch

from agents.baselines.raw_action_rl import (
    RAW_ACTION_RL_PRESETS,
    SHARED_WITH_INTERNAL_RL,
    RawActionBatch,
    RawActionRLConfig,
    make_rollout_envs,
    collect_raw_action_batch,
    load_raw_action_rl_model,
    raw_action_log_probs,
    raw_action_ppo_update,
    train_raw_action_rl,
)
from agents.checkpoints import CheckpointError
from agents.internal_rl import INTERNAL_RL_PRESETS
from agents.pretrain import load_base_model

torch.set_num_threads(1)

# A one-colour task: an untrained policy succeeds in ~15% of episodes, so batches have
# non-zero return variance and the update actually runs (the 12-colour task never succeeds).
TINY = dataclasses.replace(
    RAW_ACTION_RL_PRESETS["smoke"], task=(0,), total_episodes=48, batch_episodes=16, rollout_envs=8, epochs=2,
    minibatches=2, num_threads=1,
)


def make_envs(num_envs):
    return make_rollout_envs(dataclasses.replace(TINY, batch_episodes=num_envs, rollout_envs=num_envs, minibatches=1))


def curve_values(result, exclude=("elapsed_s", "wall_s")):
    return [tuple((k, v) for k, v in sorted(row.items()) if k not in exclude) for row in result["curve"]]


# -- configuration -------------------------------------------------------------------------


@pytest.mark.parametrize("preset", ["smoke", "default", "paper"])
def test_presets_match_internal_rl_budgets(preset):
    raw, internal = RAW_ACTION_RL_PRESETS[preset], INTERNAL_RL_PRESETS[preset]
    for name in SHARED_WITH_INTERNAL_RL:
        assert getattr(raw, name) == getattr(internal, name), name
    assert raw.train_from_layer == 0 and raw.weight_decay == 0.0 and raw.task is None


def test_paper_preset_learning_rate():
    assert RAW_ACTION_RL_PRESETS["paper"].learning_rate == 3e-5
    assert RAW_ACTION_RL_PRESETS["default"].env_id == "HierGrid-v0"


@pytest.mark.parametrize(
    "overrides, named",
    [
        ({"batch_episodes": 0}, "batch_episodes"),
        ({"epochs": 2.0}, "epochs"),
        ({"batch_episodes": 48, "rollout_envs": 32}, "rollout_envs"),
        ({"total_episodes": 8, "batch_episodes": 16, "rollout_envs": 16}, "total_episodes"),
        ({"clip_ratio": 0.0}, "clip_ratio"),
        ({"learning_rate": -1e-4}, "learning_rate"),
        ({"weight_decay": float("nan")}, "weight_decay"),
        ({"advantage_eps": 0}, "advantage_eps"),
        ({"train_from_layer": -1}, "train_from_layer"),
        ({"seed": True}, "seed"),
        ({"env_id": ""}, "env_id"),
        ({"task": ()}, "task"),
        ({"task": "01"}, "task"),
        ({"task": (0, -2)}, "task"),
    ],
)
def test_bad_config_raises_naming_the_value(overrides, named):
    with pytest.raises(ValueError, match=named):
        RawActionRLConfig(**overrides)


def test_task_is_normalised_to_a_tuple():
    assert RawActionRLConfig(task=[0, np.int64(3)]).task == (0, 3)


def test_train_from_layer_beyond_the_model_raises(smoke_base_model_path, tmp_path):
    config = dataclasses.replace(TINY, train_from_layer=3)  # smoke model has 2 layers
    with pytest.raises(ValueError, match="train_from_layer=3"):
        train_raw_action_rl(smoke_base_model_path, config, tmp_path, progress=False)


# -- rollouts and update -------------------------------------------------------------------


def test_cached_rollout_log_probs_equal_full_forward(smoke_base_model_path):
    """The stored behaviour log-probs (KV-cache steps) equal the update's full forward pass (SPEC B4)."""
    model = load_base_model(smoke_base_model_path).eval()
    envs = make_envs(6)
    batch = collect_raw_action_batch(model, envs, seed=3, generator=torch.Generator().manual_seed(0))
    n, length = batch.actions.shape
    assert batch.observations.shape == (n, length, 637) and n == 6
    np.testing.assert_array_equal(batch.step_mask.sum(1).numpy(), batch.lengths)
    assert length == batch.lengths.max()
    # the mask is a prefix and padded steps carry nothing
    assert torch.equal(batch.step_mask, torch.arange(length)[None] < torch.from_numpy(batch.lengths)[:, None])
    assert torch.all(batch.observations[~batch.step_mask] == 0) and torch.all(batch.log_probs[~batch.step_mask] == 0)
    assert set(batch.returns.tolist()) <= {0.0, 1.0}
    with torch.no_grad():
        recomputed = raw_action_log_probs(model, batch.observations, batch.actions)
    torch.testing.assert_close(recomputed[batch.step_mask], batch.log_probs[batch.step_mask], atol=1e-5, rtol=1e-5)


def test_same_generator_same_rollout(smoke_base_model_path):
    model = load_base_model(smoke_base_model_path).eval()
    envs = make_envs(4)
    first = collect_raw_action_batch(model, envs, seed=5, generator=torch.Generator().manual_seed(1))
    second = collect_raw_action_batch(model, envs, seed=5, generator=torch.Generator().manual_seed(1))
    assert torch.equal(first.actions, second.actions) and torch.equal(first.returns, second.returns)
    third = collect_raw_action_batch(model, envs, seed=5, generator=torch.Generator().manual_seed(2))
    assert not torch.equal(first.actions, third.actions)


def hand_made_batch(model, returns):
    """Four 3-step episodes on the same observations: episodes 0-1 always take action 0, 2-3 action 1."""
    envs = make_envs(1)
    obs, _ = envs.reset(seed=11)
    steps = [obs]
    for action in (1, 2):
        obs, *_ = envs.step(np.array([action]))
        steps.append(obs)
    observations = torch.from_numpy(np.concatenate(steps))[None].repeat(4, 1, 1)  # (4, 3, D)
    actions = torch.tensor([[0] * 3, [0] * 3, [1] * 3, [1] * 3])  # (4, 3)
    with torch.no_grad():
        old = raw_action_log_probs(model, observations, actions)  # (4, 3)
    mask = torch.ones(4, 3, dtype=torch.bool)
    return RawActionBatch(observations, actions, old, mask, torch.zeros(4, 3), torch.tensor(returns),
                          np.full(4, 3), np.zeros(4, dtype=np.int64))


def action_probabilities(model, observations):
    with torch.no_grad():
        return torch.softmax(model(observations[:1]).action_logits[0], -1)  # (3, A)


@pytest.mark.parametrize("returns, rewarded, punished", [([1.0, 1.0, 0.0, 0.0], 0, 1), ([0.0, 0.0, 1.0, 1.0], 1, 0)])
def test_clipped_update_moves_policy_toward_positive_advantage(smoke_base_model_path, returns, rewarded, punished):
    model = load_base_model(smoke_base_model_path).eval()
    batch = hand_made_batch(model, returns)
    before = action_probabilities(model, batch.observations)
    config = dataclasses.replace(TINY, epochs=3, minibatches=2, learning_rate=1e-3)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate, weight_decay=0.0)
    stats = raw_action_ppo_update(model, optimizer, batch, config, torch.Generator().manual_seed(0))
    after = action_probabilities(model, batch.observations)
    assert stats["zero_variance"] == 0.0 and stats["approx_kl"] > 0
    assert torch.all(after[:, rewarded] > before[:, rewarded])
    assert torch.all(after[:, punished] < before[:, punished])


def test_zero_variance_batch_leaves_the_model_untouched(smoke_base_model_path):
    model = load_base_model(smoke_base_model_path).eval()
    batch = hand_made_batch(model, [0.0, 0.0, 0.0, 0.0])
    state = {k: v.clone() for k, v in model.state_dict().items()}
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.0)
    stats = raw_action_ppo_update(model, optimizer, batch, TINY, torch.Generator().manual_seed(0))
    assert stats["zero_variance"] == 1.0
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())


# -- training loop -------------------------------------------------------------------------


def test_same_seed_same_curve_and_resume_reproduces_it(smoke_base_model_path, tmp_path):
    first = train_raw_action_rl(smoke_base_model_path, TINY, tmp_path / "a", progress=False)
    again = train_raw_action_rl(smoke_base_model_path, TINY, tmp_path / "a2", progress=False)
    partial = train_raw_action_rl(smoke_base_model_path, TINY, tmp_path / "b", progress=False, stop_after_updates=2)
    assert not partial["finished"] and len(partial["curve"]) == 2
    resumed = train_raw_action_rl(smoke_base_model_path, TINY, tmp_path / "b", progress=False)
    other_seed = train_raw_action_rl(smoke_base_model_path, dataclasses.replace(TINY, seed=1), tmp_path / "c",
                                     progress=False)

    assert first["finished"] and len(first["curve"]) == 3
    assert [row["episodes"] for row in first["curve"]] == [16, 32, 48]
    assert any(row["zero_variance"] == 0.0 for row in first["curve"])  # the update really ran
    assert curve_values(first) == curve_values(again) == curve_values(resumed)
    assert curve_values(first) != curve_values(other_seed)
    assert first["final_success_rate"] == first["curve"][-1]["success_rate"]
    assert {"episodes", "env_steps", "success_rate", "wall_s"} <= set(first["curve"][0])

    finetuned = load_raw_action_rl_model(first["model_path"])
    resumed_model = load_raw_action_rl_model(resumed["model_path"])
    base = load_base_model(smoke_base_model_path)
    for (name, weight), resumed_weight, base_weight in zip(
        finetuned.state_dict().items(), resumed_model.state_dict().values(), base.state_dict().values()
    ):
        assert torch.equal(weight, resumed_weight), name
    assert any(not torch.equal(w, b) for w, b in zip(finetuned.parameters(), base.parameters()))

    # a finished run is returned, not redone
    finished = train_raw_action_rl(smoke_base_model_path, TINY, tmp_path / "a", progress=False)
    assert curve_values(finished) == curve_values(first)


def test_resume_refuses_another_config(smoke_base_model_path, tmp_path):
    train_raw_action_rl(smoke_base_model_path, TINY, tmp_path, progress=False, stop_after_updates=1)
    with pytest.raises(CheckpointError, match="different RawActionRLConfig"):
        train_raw_action_rl(smoke_base_model_path, dataclasses.replace(TINY, learning_rate=1e-5), tmp_path,
                            progress=False)


def test_train_from_layer_freezes_the_lower_blocks(smoke_base_model_path, tmp_path):
    config = dataclasses.replace(TINY, train_from_layer=1, total_episodes=16)
    result = train_raw_action_rl(smoke_base_model_path, config, tmp_path, progress=False)
    assert result["curve"][0]["zero_variance"] == 0.0
    finetuned, base = load_raw_action_rl_model(result["model_path"]), load_base_model(smoke_base_model_path)
    tuned, original = finetuned.state_dict(), base.state_dict()
    frozen = [k for k in original if k.startswith(("embed.", "relative_bias.", "blocks.0."))]
    assert frozen and all(torch.equal(tuned[k], original[k]) for k in frozen)
    assert any(not torch.equal(tuned[k], original[k]) for k in original if k.startswith("blocks.1."))


def test_ant_raw_action_rl_scores_the_sampled_torques(tmp_path):
    """Gaussian head: stored log-probs are those of the sampled (unclipped) torques; the update runs."""
    from agents.baselines.raw_action_rl import ANT_RAW_ACTION_RL_PRESETS, collect_raw_action_batch, raw_action_log_probs
    from agents.checkpoints import save_checkpoint
    from agents.models.base_models import base_model_config_to_dict
    from agents.models.hawk import HAWK_PRESETS, HawkSSM
    from agents.pretrain import BASE_MODEL_KIND
    from agents.rollouts import make_vector_env

    torch.manual_seed(0)
    model = HawkSSM(HAWK_PRESETS["smoke"])
    model.eval()
    envs = make_vector_env("HierAnt-v0", 2)
    batch = collect_raw_action_batch(model, envs, seed=1, generator=torch.Generator().manual_seed(0))
    assert batch.actions.dtype == torch.float32 and batch.actions.shape[2] == 8
    assert batch.actions.abs().max() > 1.0  # unit-std samples leave [-1, 1]; the env got them clipped
    recomputed = raw_action_log_probs(model, batch.observations, batch.actions)
    torch.testing.assert_close(recomputed[batch.step_mask], batch.log_probs[batch.step_mask], atol=1e-4, rtol=1e-4)
    path = tmp_path / "hawk.pt"
    save_checkpoint(path, {"kind": BASE_MODEL_KIND, "model": model.state_dict(), "optimizer": None, "step": 0,
                           "config": {"model": base_model_config_to_dict(model.config)}})
    config = dataclasses.replace(ANT_RAW_ACTION_RL_PRESETS["smoke"], total_episodes=4, batch_episodes=2, rollout_envs=2,
                                 minibatches=2)
    result = train_raw_action_rl(path, config, tmp_path / "run", progress=False)
    assert result["finished"] and len(result["curve"]) == 2
    assert isinstance(load_raw_action_rl_model(tmp_path / "run" / "model.pt"), HawkSSM)
