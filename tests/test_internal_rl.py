"""Internal RL: advantage, clipped loss, policy density, rollouts, determinism (SPEC A§6, §9.2 items 4, 8, 9)."""

import dataclasses

import numpy as np
import pytest
import torch

from agents.internal_rl import (
    INTERNAL_RL_PRESETS,
    CodePolicy,
    InternalRLEnvironment,
    ReencodingStepper,
    batch_normalised_advantage,
    clipped_surrogate_loss,
    train_internal_rl,
)
from agents.metacontroller import Metacontroller, MetacontrollerConfig
from agents.models.transformer import TRANSFORMER_PRESETS, CausalTransformer
from agents.training_utils import CsvLog


def test_batch_normalised_advantage():
    returns = torch.tensor([1.0, 0.0, 0.0, 0.0])
    advantage = batch_normalised_advantage(returns, 1e-3)
    std = np.sqrt(0.1875)  # population std of [1, 0, 0, 0]
    torch.testing.assert_close(advantage, torch.tensor([0.75, -0.25, -0.25, -0.25]) / (std + 1e-3))
    torch.testing.assert_close(batch_normalised_advantage(torch.ones(3), 1e-3), torch.zeros(3))


def test_clipped_surrogate_by_hand():
    old = torch.zeros(2, 2)
    new = torch.log(torch.tensor([[1.5, 1.1], [0.5, 1.0]]))
    advantages = torch.tensor([1.0, -1.0])
    mask = torch.tensor([[True, True], [True, False]])
    loss, clip_fraction = clipped_surrogate_loss(new, old, advantages, mask, clip_ratio=0.2)
    # episode 0: min(1.5, 1.2) + min(1.1, 1.1) = 2.3 ; episode 1: min(-0.5, -0.8) = -0.8
    torch.testing.assert_close(loss, torch.tensor(-(2.3 - 0.8) / 2))
    torch.testing.assert_close(clip_fraction, torch.tensor(2 / 3))


def test_policy_starts_at_the_prior_and_uses_the_joint_density():
    policy = CodePolicy(width=6, latent_dim=8, hidden=5, initial_log_std=0.0)
    state, mean = policy.step(torch.randn(4, 6), policy.initial_state(4))
    assert torch.all(mean == 0)
    z = torch.randn(4, 8)
    expected = torch.distributions.Normal(torch.zeros(8), torch.ones(8)).log_prob(z).sum(-1)
    torch.testing.assert_close(policy.log_prob(mean, z), expected)


@pytest.fixture(scope="module")
def frozen_parts():
    torch.manual_seed(0)
    base = CausalTransformer(TRANSFORMER_PRESETS["smoke"])
    metacontroller = Metacontroller(base.config.width, MetacontrollerConfig())
    return base, metacontroller


def test_collect_acts_only_at_switches_and_matches_full_forward(frozen_parts):
    """§9.2 item 9: logits from the cached, controlled rollout equal a full forward with the same codes."""
    base, metacontroller = frozen_parts
    environment = InternalRLEnvironment(base, metacontroller, "HierGrid-v0", 4, switch_threshold=0.5)
    policy = CodePolicy(base.config.width, 8, 16, 0.0)
    batch = environment.collect(policy, seed=3, generator=torch.Generator().manual_seed(0))
    counts = batch.decision_mask.sum(1)
    assert torch.all(counts >= 1)  # the first step always asks the policy
    assert batch.residuals.shape[:2] == batch.codes.shape[:2] == batch.log_probs.shape
    recomputed = policy.sequence_log_prob(batch.residuals, batch.codes)
    torch.testing.assert_close(recomputed[batch.decision_mask], batch.log_probs[batch.decision_mask], atol=1e-5, rtol=1e-5)
    assert set(batch.returns.tolist()) <= {0.0, 1.0} and (batch.lengths >= 1).all()


def test_recomputed_log_probs_see_the_rollouts_inputs_in_order():
    """§9.2 item 8: the update's log-probs (ρ = 1 before any step) equal the rollout's when the
    policy's mean depends on its inputs and recurrent state (a zero mean head would hide a
    misordered or misaligned decision sequence), over episodes with several decisions each."""
    torch.manual_seed(1)
    base = CausalTransformer(TRANSFORMER_PRESETS["smoke"])
    metacontroller = Metacontroller(base.config.width, MetacontrollerConfig(switch_bias_init=0.3))
    environment = InternalRLEnvironment(base, metacontroller, "HierGrid-v0", 8, switch_threshold=0.5)
    policy = CodePolicy(base.config.width, 8, 16, -0.5)
    with torch.no_grad():
        policy.mean_head.weight.normal_(0.0, 1.0)
        policy.mean_head.bias.normal_(0.0, 1.0)
    batch = environment.collect(policy, seed=11, generator=torch.Generator().manual_seed(2))
    counts = batch.decision_mask.sum(1)
    assert counts.max() >= 3  # several decisions: the GRU state matters
    recomputed = policy.sequence_log_prob(batch.residuals, batch.codes)
    torch.testing.assert_close(recomputed[batch.decision_mask], batch.log_probs[batch.decision_mask], atol=1e-5, rtol=1e-5)
    shuffled = policy.sequence_log_prob(batch.residuals.flip(0), batch.codes)  # another episode's inputs
    assert not torch.allclose(shuffled[batch.decision_mask], batch.log_probs[batch.decision_mask], atol=1e-3)


def test_cached_rollout_equals_reencoding_the_history(frozen_parts):
    """§9.2 item 9 end to end: KV-cached collection = re-encoding the full context at every step."""
    base, metacontroller = frozen_parts
    environment = InternalRLEnvironment(base, metacontroller, "HierGrid-v0", 6, switch_threshold=0.5)
    policy = CodePolicy(base.config.width, 8, 16, 0.0)
    cached = environment.collect(policy, seed=7, generator=torch.Generator().manual_seed(1))
    reencoded = environment.collect(
        policy, seed=7, generator=torch.Generator().manual_seed(1), stepper=ReencodingStepper(base, environment.layer)
    )
    np.testing.assert_array_equal(cached.lengths, reencoded.lengths)
    torch.testing.assert_close(cached.returns, reencoded.returns)
    torch.testing.assert_close(cached.codes, reencoded.codes)
    torch.testing.assert_close(cached.residuals, reencoded.residuals, atol=1e-5, rtol=1e-5)


def test_same_seed_same_curve_and_resume(frozen_parts, tmp_path):
    base, metacontroller = frozen_parts
    config = dataclasses.replace(
        INTERNAL_RL_PRESETS["smoke"], total_episodes=48, batch_episodes=16, rollout_envs=8, epochs=2, minibatches=2
    )
    train_internal_rl(config, base, metacontroller, tmp_path / "a", progress=False)
    train_internal_rl(config, base, metacontroller, tmp_path / "b", stop_after_updates=2, progress=False)
    train_internal_rl(config, base, metacontroller, tmp_path / "b", progress=False)
    fields = ("update", "episodes", "env_steps", "success_rate", "decisions_per_episode", "policy_std")
    curves = [
        [tuple(row[f] for f in fields) for row in CsvLog(tmp_path / name / "learning_curve.csv", ["update"], "update").read()]
        for name in ("a", "b")
    ]
    assert len(curves[0]) == 3 and curves[0] == curves[1]
    assert not any(p.requires_grad for p in base.parameters())
    assert not any(p.requires_grad for p in metacontroller.parameters())


def test_env_kwargs_pin_the_task_and_old_runs_still_resume(frozen_parts, tmp_path):
    """``InternalRLConfig.env_kwargs`` reach the batched env (a pinned pretraining task), and a run
    directory written before the field existed resumes as a run without it."""
    from agents.checkpoints import load_checkpoint, save_checkpoint

    base, metacontroller = frozen_parts
    pinned = [0, 1, 4, 5, 2, 3]
    environment = InternalRLEnvironment(base, metacontroller, "HierGrid-v0", 3, switch_threshold=0.5,
                                        env_kwargs={"task": pinned})
    _, info = environment.envs.reset(seed=0)
    assert [tuple(task) for task in info["task"]] == [tuple(pinned)] * 3
    with pytest.raises(TypeError, match="env_kwargs"):
        dataclasses.replace(INTERNAL_RL_PRESETS["smoke"], env_kwargs=[("task", pinned)])

    config = dataclasses.replace(INTERNAL_RL_PRESETS["smoke"], total_episodes=16, batch_episodes=8, rollout_envs=8,
                                 epochs=1, minibatches=1)
    train_internal_rl(config, base, metacontroller, tmp_path / "old", stop_after_updates=1, progress=False)
    record = load_checkpoint(tmp_path / "old" / "latest.pt")
    del record["config"]["env_kwargs"]  # as written before the field existed
    save_checkpoint(tmp_path / "old" / "latest.pt", record)
    assert train_internal_rl(config, base, metacontroller, tmp_path / "old", progress=False).name == "policy.pt"
    from agents.checkpoints import CheckpointError

    train_internal_rl(config, base, metacontroller, tmp_path / "new", stop_after_updates=1, progress=False)
    with pytest.raises(CheckpointError, match="latest.pt"):  # another task is another run
        train_internal_rl(dataclasses.replace(config, env_kwargs={"task": pinned}), base, metacontroller,
                          tmp_path / "new", progress=False)



def test_a_run_directory_is_refused_for_another_metacontroller_backbone_or_config(frozen_parts, tmp_path):
    """A finished or stopped run steers one base model and one metacontroller: rerunning it with
    others (e.g. a metacontroller trained with another α) or another config is refused, naming
    the file, instead of returning the old policy (SPEC B4)."""
    from agents.checkpoints import CheckpointError

    base, metacontroller = frozen_parts
    torch.manual_seed(1)
    other_metacontroller = Metacontroller(base.config.width, MetacontrollerConfig())
    other_base = CausalTransformer(TRANSFORMER_PRESETS["smoke"])
    config = dataclasses.replace(INTERNAL_RL_PRESETS["smoke"], total_episodes=16, batch_episodes=8, rollout_envs=8,
                                 epochs=1, minibatches=1)
    train_internal_rl(config, base, metacontroller, tmp_path / "run", stop_after_updates=1, progress=False)
    with pytest.raises(CheckpointError, match="latest.pt.*another metacontroller_fingerprint"):
        train_internal_rl(config, base, other_metacontroller, tmp_path / "run", progress=False)
    final = train_internal_rl(config, base, metacontroller, tmp_path / "run", progress=False)
    assert final.name == "policy.pt"
    with pytest.raises(CheckpointError, match="policy.pt.*another metacontroller_fingerprint"):
        train_internal_rl(config, base, other_metacontroller, tmp_path / "run", progress=False)
    with pytest.raises(CheckpointError, match="policy.pt.*another base_model_fingerprint"):
        train_internal_rl(config, other_base, metacontroller, tmp_path / "run", progress=False)
    with pytest.raises(CheckpointError, match="policy.pt.*different InternalRLConfig"):
        train_internal_rl(dataclasses.replace(config, learning_rate=1e-2), base, metacontroller, tmp_path / "run",
                          progress=False)
    assert train_internal_rl(config, base, metacontroller, tmp_path / "run", progress=False) == final


@pytest.mark.parametrize("overrides, message", [
    ({"total_episodes": 16, "batch_episodes": 32, "rollout_envs": 32}, "below one batch"),
    ({"batch_episodes": 32, "rollout_envs": 32, "minibatches": 5}, "multiple of minibatches"),
    ({"seed": -5}, "seed"),
    ({"initial_log_std": float("nan")}, "initial_log_std"),
    ({"num_threads": 0}, "num_threads"),
    ({"env_id": ""}, "env_id"),
])
def test_config_refuses_values_that_would_train_nothing_or_something_else(overrides, message):
    with pytest.raises(ValueError, match=message):
        dataclasses.replace(INTERNAL_RL_PRESETS["smoke"], **overrides)


def test_ant_paper_preset_is_table_a14():
    from agents.internal_rl import ANT_INTERNAL_RL_PRESETS

    paper = ANT_INTERNAL_RL_PRESETS["paper"]
    assert (paper.batch_episodes, paper.learning_rate, paper.weight_decay) == (256, 3e-5, 0.0)

def test_ant_internal_rl_environment_with_hawk_and_linear_controller():
    """The same loop on HierAnt: recurrent-state stepping equals re-encoding the history, actions clipped."""
    from agents.models.hawk import HAWK_PRESETS, HawkSSM

    torch.manual_seed(0)
    base = HawkSSM(HAWK_PRESETS["smoke"])
    metacontroller = Metacontroller(base.config.width, MetacontrollerConfig(controller="linear"))
    environment = InternalRLEnvironment(base, metacontroller, "HierAnt-v0", 2, switch_threshold=0.5, greedy_actions=True)
    policy = CodePolicy(base.config.width, 8, 16, 0.0)
    cached = environment.collect(policy, seed=4, generator=torch.Generator().manual_seed(2))
    assert environment.max_steps == 500 and torch.all(cached.decision_mask.sum(1) >= 1)
    environment.max_steps = 40  # re-encoding is quadratic in time: compare the first 40 steps
    short = environment.collect(policy, seed=4, generator=torch.Generator().manual_seed(2))
    reencoded = environment.collect(policy, seed=4, generator=torch.Generator().manual_seed(2),
                                    stepper=ReencodingStepper(base, environment.layer))
    np.testing.assert_array_equal(short.lengths, reencoded.lengths)
    torch.testing.assert_close(short.codes, reencoded.codes)
    # the first decision sees identical observations: equal to float32 precision; later ones see
    # MuJoCo states that contact dynamics drift apart from ~1e-7 torque differences
    torch.testing.assert_close(short.residuals[:, 0], reencoded.residuals[:, 0], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(short.residuals, reencoded.residuals, atol=1e-3, rtol=1e-3)


def test_study_cli_kl_weight_fixes_alpha_instead_of_the_sweeps_choice():
    """``--kl-weight`` is used as given: the study does not replace it by the α its rate–distortion
    sweep selects (it did, silently, before)."""
    from agents.internal_rl_study import parse_study_args

    files = ["--base-model", "missing.pt", "--dstar", "missing.npz"]
    _, preset = parse_study_args(files)
    _, fixed = parse_study_args([*files, "--kl-weight", "0.17"])
    assert preset.select_kl_weight and not fixed.select_kl_weight
    assert fixed.metacontroller.metacontroller.kl_weight == 0.17


@pytest.mark.parametrize("overrides, message", [
    ({"env": "Ant"}, "env must be 'grid' or 'ant'"),
    ({"env": "ant"}, "not a ant env"),
    ({"switch_tolerance": -3}, "switch_tolerance"),
    ({"rl_seeds": ()}, "rl_seeds"),
    ({"sweep_kl_weights": (0.1, float("inf"))}, "sweep_kl_weights"),
    ({"sweep_kl_weights": ()}, "select_kl_weight needs"),
])
def test_study_config_refuses_what_it_would_misread(overrides, message):
    from agents.internal_rl_study import INTERNAL_RL_STUDY_PRESETS

    with pytest.raises(ValueError, match=message):
        dataclasses.replace(INTERNAL_RL_STUDY_PRESETS["smoke"], **overrides)


def test_ant_cotraining_starts_from_the_pretrained_weights(tmp_path):
    """C.4.2: the ant's co-trained base model starts from the pretrained θ (the grid's from random
    weights); the sweep asks for it, and the caller's frozen model is left untouched."""
    from agents.internal_rl_study import ANT_INTERNAL_RL_STUDY_PRESETS, sweep_metacontroller_config
    from agents.models.hawk import HAWK_PRESETS, HawkSSM
    from agents.train_metacontroller import ANT_METACONTROLLER_PRESETS, load_cotrained_base_model, train_metacontroller
    from hier_envs.datasets import generate_ant_dataset

    torch.manual_seed(123)  # not the metacontroller's seed, from which a fresh base model is drawn
    base = HawkSSM(HAWK_PRESETS["smoke"]).requires_grad_(False).eval()
    before = {name: tensor.clone() for name, tensor in base.state_dict().items()}
    dataset = generate_ant_dataset(2, False, seed=0, progress=False)
    main = dataclasses.replace(ANT_METACONTROLLER_PRESETS["smoke"], train_steps=2, log_every=1, checkpoint_every=1)
    assert ANT_INTERNAL_RL_STUDY_PRESETS["paper"].sweep_cotrain
    config = sweep_metacontroller_config(main, 0.1, 2, cotrain=True, cotrain_init="pretrained")
    path = train_metacontroller(config, base, dataset, tmp_path / "pretrained", progress=False)
    cotrained = load_cotrained_base_model(path)
    changed = [name for name, tensor in cotrained.state_dict().items() if not torch.equal(tensor, before[name])]
    assert changed  # trained jointly ...
    distance = sum(float((cotrained.state_dict()[n] - before[n]).abs().max()) for n in before)
    fresh = load_cotrained_base_model(train_metacontroller(
        sweep_metacontroller_config(main, 0.1, 2, cotrain=True), base, dataset, tmp_path / "random", progress=False))
    fresh_distance = sum(float((fresh.state_dict()[n] - before[n]).abs().max()) for n in before)
    assert distance < 0.1 * fresh_distance  # ... from the pretrained weights, not from a fresh draw
    assert all(torch.equal(tensor, before[name]) for name, tensor in base.state_dict().items())
