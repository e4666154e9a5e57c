"""Internal RL: advantage, clipped loss, policy density, rollouts, determinism (SPEC A§6, §9.2 items 4, 6–9)."""

import dataclasses

import numpy as np
import pytest
import torch

from agents.internal_rl import (
    INTERNAL_RL_PRESETS,
    CachedStepper,
    CodePolicy,
    EpisodeBatch,
    InternalRLConfig,
    InternalRLEnvironment,
    ReencodingStepper,
    batch_normalised_advantage,
    clipped_surrogate_loss,
    ppo_update,
    train_internal_rl,
)
from agents.metacontroller import SWITCH_THRESHOLD, Metacontroller, MetacontrollerConfig
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


class RecordingStepper:
    """Wraps a base-model stepper and keeps, per timestep, the observation ``collect`` fed it and
    the step's action logits."""

    def __init__(self, stepper):
        self.stepper = stepper

    def reset(self, num_envs, max_steps):
        self.stepper.reset(num_envs, max_steps)
        self.observations, self.logits = [], []

    def lower(self, obs):
        self.observations.append(obs.clone())
        return self.stepper.lower(obs)

    def upper(self, controlled):
        output = self.stepper.upper(controlled)
        self.logits.append(output.action_logits.clone())
        return output


@pytest.fixture(scope="module")
def context_sensitive_parts():
    """A smoke-size base model whose weights are enlarged (N(0, 0.5²), as in test_transformer.py)
    and a metacontroller whose controller is scaled down: with these, the action logits depend
    clearly on the past context *and* on the controller, and β ≥ 0.5 at some steps but not at
    others. (With the smoke preset's small initialisation the logits hardly depend on context,
    so a rollout that dropped history or never applied the controller went unnoticed.)"""
    torch.manual_seed(0)
    base = CausalTransformer(TRANSFORMER_PRESETS["smoke"]).eval()
    with torch.no_grad():
        for parameter in base.parameters():
            parameter.normal_(0.0, 0.5)
    metacontroller = Metacontroller(base.config.width, MetacontrollerConfig(switch_bias_init=-0.3))
    with torch.no_grad():
        metacontroller.decoder[-1].weight.mul_(0.3)  # U(z) e of the order of e, not 10x larger
    return base, metacontroller


def valid_steps(lengths, steps):
    """``(N, steps)`` bool: the timesteps each episode actually lived."""
    return torch.arange(steps)[None] < torch.as_tensor(lengths)[:, None]


def replay_switches(metacontroller, residuals, lengths, batch, threshold):
    """The decisions SPEC A§6 prescribes, recomputed outside ``collect``.

    From the uncontrolled residuals ``(N, T, W)`` of a full forward pass, with the training-time
    history GRU (``history_states``, h_{t-1}) and the code held since the last decision (z_{t-1}),
    a decision is due at t = 0 and wherever β_t ≥ ``threshold``; it takes the episode's next code
    from ``batch``. Returns ``decided (N, T)``, the held codes ``(N, T, Z)`` and ``β (N, T)``.
    """
    n, steps, _ = residuals.shape
    history_prev = metacontroller.history_states(residuals)  # (N, T, H)
    valid = valid_steps(lengths, steps)
    counts = batch.decision_mask.sum(1)
    taken = torch.zeros(n, dtype=torch.long)
    code = torch.zeros(n, batch.codes.shape[-1])
    codes = torch.zeros(n, steps, batch.codes.shape[-1])
    betas = torch.ones(n, steps)
    decided = torch.zeros(n, steps, dtype=torch.bool)
    for t in range(steps):
        if t > 0:
            betas[:, t] = metacontroller.switch_probability(residuals[:, t], history_prev[:, t], code)
        switch = valid[:, t] & ((t == 0) | (betas[:, t] >= threshold))
        assert torch.all(taken[switch] < counts[switch]), f"t={t}: a switch is due but the rollout made no decision"
        rows = torch.nonzero(switch).squeeze(1)
        code[rows] = batch.codes[rows, taken[rows]]
        taken[rows] += 1
        decided[:, t] = switch
        codes[:, t] = code
    return decided, codes, betas


def test_collect_acts_only_at_switches_and_matches_full_forward(context_sensitive_parts):
    """SPEC A§6 and §9.2 items 6 and 9: the policy acts exactly at t = 0 and where β_t ≥ 0.5
    (``SWITCH_THRESHOLD``), nowhere else; each decision sees the uncontrolled e_t of that step;
    and the cached, controlled step logits equal a full forward pass ``base(obs, controller=...)``
    that holds each code until the next decision.

    The switching times and held codes are recomputed outside ``collect`` from the full forward
    residuals (:func:`replay_switches`), with a base model whose logits depend on the context
    and on the controller, so a policy acting at every step, a rollout that never applies the
    controller, or another threshold all fail."""
    base, metacontroller = context_sensitive_parts
    environment = InternalRLEnvironment(base, metacontroller, "HierGrid-v0", 8, switch_threshold=SWITCH_THRESHOLD)
    policy = CodePolicy(base.config.width, 8, 16, 0.0)
    recorder = RecordingStepper(CachedStepper(base, environment.layer))
    with torch.no_grad():
        batch = environment.collect(policy, seed=3, generator=torch.Generator().manual_seed(0), stepper=recorder)
        observations = torch.stack(recorder.observations, 1)  # (N, T, D)
        full = base(observations, return_residuals=True)
        residuals = full.residuals[environment.layer]  # uncontrolled e_t, (N, T, W)
        decided, codes, betas = replay_switches(metacontroller, residuals, batch.lengths, batch, threshold=0.5)
        controlled = base(observations, controller=lambda e: metacontroller.apply_controller(e, codes)).action_logits
    valid = valid_steps(batch.lengths, observations.shape[1])
    later = valid.clone()
    later[:, 0] = False
    # the case is informative: β crosses 0.5 both ways (some in [0.5, 0.7)), never within
    # float noise of the threshold, and the controller changes the logits
    assert (betas[later] >= 0.5).sum() >= 5 and (betas[later] < 0.5).sum() >= 5
    assert ((betas[later] >= 0.5) & (betas[later] < 0.7)).sum() >= 5
    assert (betas[later] - 0.5).abs().min() > 1e-4
    assert (controlled - full.action_logits)[valid].abs().mean() > 0.1

    # (a) decisions exactly at t = 0 and at β ≥ 0.5, each seeing that step's e_t
    assert torch.equal(batch.decision_mask.sum(1), decided.sum(1))
    episode, step = torch.nonzero(decided, as_tuple=True)  # in episode order, then time order
    torch.testing.assert_close(batch.residuals[batch.decision_mask], residuals[episode, step], atol=1e-4, rtol=1e-4)
    recomputed = policy.sequence_log_prob(batch.residuals, batch.codes)
    torch.testing.assert_close(recomputed[batch.decision_mask], batch.log_probs[batch.decision_mask], atol=1e-5, rtol=1e-5)
    # (b) step logits of the cached, controlled rollout = full forward with the held codes
    step_logits = torch.stack(recorder.logits, 1)  # (N, T, A)
    torch.testing.assert_close(step_logits[valid], controlled[valid], atol=1e-4, rtol=1e-4)
    assert set(batch.returns.tolist()) <= {0.0, 1.0} and (batch.lengths >= 1).all()


def test_switch_threshold_is_one_half_and_inclusive(monkeypatch):
    """SPEC A§6 (β_threshold = 0.5, EXACT) and §9.2 item 6 (one named constant): the constant
    and every preset use 0.5, and through ``collect`` a β of 0.5 or 0.55 hands control to the
    policy at every step while 0.45 leaves the first code in place for the whole episode."""
    assert SWITCH_THRESHOLD == 0.5
    assert InternalRLConfig().switch_threshold == 0.5
    assert all(preset.switch_threshold == 0.5 for preset in INTERNAL_RL_PRESETS.values())
    torch.manual_seed(0)
    base = CausalTransformer(TRANSFORMER_PRESETS["smoke"])
    metacontroller = Metacontroller(base.config.width, MetacontrollerConfig())
    environment = InternalRLEnvironment(base, metacontroller, "HierGrid-v0", 4,
                                        switch_threshold=INTERNAL_RL_PRESETS["smoke"].switch_threshold)
    policy = CodePolicy(base.config.width, 8, 16, 0.0)
    for beta, switches in ((0.45, False), (0.5, True), (0.55, True)):
        monkeypatch.setattr(metacontroller, "switch_probability",
                            lambda e, h, z, noise=None, beta=beta: torch.full((e.shape[0],), beta))
        batch = environment.collect(policy, seed=5, generator=torch.Generator().manual_seed(0))
        expected = torch.as_tensor(batch.lengths) if switches else torch.ones(4, dtype=torch.long)
        assert torch.equal(batch.decision_mask.sum(1), expected), beta
        assert batch.lengths.max() > 1  # there are steps after the first


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


def test_cached_rollout_equals_reencoding_the_history(context_sensitive_parts):
    """§9.2 item 9 end to end: KV-cached collection = re-encoding the full (controlled) context at
    every step — the same step logits, residuals, decisions and codes — with a base model whose
    logits depend on the past, so a stepper that drops the controlled history differs."""
    base, metacontroller = context_sensitive_parts
    environment = InternalRLEnvironment(base, metacontroller, "HierGrid-v0", 6, switch_threshold=0.5)
    policy = CodePolicy(base.config.width, 8, 16, 0.0)
    recorders = {name: RecordingStepper(stepper(base, environment.layer))
                 for name, stepper in (("cached", CachedStepper), ("reencoded", ReencodingStepper))}
    batches = {name: environment.collect(policy, seed=7, generator=torch.Generator().manual_seed(1), stepper=recorder)
               for name, recorder in recorders.items()}
    cached, reencoded = batches["cached"], batches["reencoded"]
    logits = {name: torch.stack(recorder.logits, 1) for name, recorder in recorders.items()}
    steps = min(logits["cached"].shape[1], logits["reencoded"].shape[1])
    valid = valid_steps(cached.lengths, steps)
    torch.testing.assert_close(logits["reencoded"][:, :steps][valid], logits["cached"][:, :steps][valid],
                               atol=1e-4, rtol=1e-4)
    np.testing.assert_array_equal(cached.lengths, reencoded.lengths)
    torch.testing.assert_close(cached.returns, reencoded.returns)
    assert torch.equal(cached.decision_mask, reencoded.decision_mask)
    torch.testing.assert_close(cached.codes, reencoded.codes)
    torch.testing.assert_close(cached.residuals, reencoded.residuals, atol=1e-4, rtol=1e-4)
    # the context matters here: the upper blocks on the current controlled residual alone differ
    with torch.no_grad():
        observations = torch.stack(recorders["cached"].observations, 1)
        e = base.forward_lower(observations, environment.layer)
        _, codes, _ = replay_switches(metacontroller, e, cached.lengths, cached, threshold=0.5)
        controlled = metacontroller.apply_controller(e, codes)  # (N, T, W)
        alone = base.forward_upper(controlled.reshape(-1, 1, controlled.shape[-1]), environment.layer)
    alone_logits = alone.action_logits.reshape(logits["cached"].shape)
    assert (alone_logits - logits["cached"])[valid_steps(cached.lengths, alone_logits.shape[1])].abs().mean() > 0.05


def hand_made_batch(policy, returns, decisions=2, width=6, seed=0):
    """A batch of ``len(returns)`` episodes with ``decisions`` steps each (the last one padded in
    odd episodes): episodes with return 1 chose codes +1, the others −1, and the stored
    log-probabilities are the policy's own (ρ = 1 before any update)."""
    generator = torch.Generator().manual_seed(seed)
    returns = torch.as_tensor(returns, dtype=torch.float32)
    n, latent = len(returns), policy.mean_head.out_features
    residuals = torch.randn(n, decisions, width, generator=generator)
    sign = 2 * returns - 1  # +1 for successes, −1 for failures
    codes = sign[:, None, None].expand(n, decisions, latent).clone()
    mask = torch.ones(n, decisions, dtype=torch.bool)
    mask[1::2, -1] = False
    with torch.no_grad():
        log_probs = policy.sequence_log_prob(residuals, codes) * mask
    return EpisodeBatch(residuals, codes, log_probs, mask, returns, np.full(n, 10))


def ppo_config(**overrides):
    return dataclasses.replace(INTERNAL_RL_PRESETS["smoke"], batch_episodes=8, rollout_envs=8, **overrides)


def mean_log_prob(policy, batch, rows):
    with torch.no_grad():
        log_probs = policy.sequence_log_prob(batch.residuals[rows], batch.codes[rows])
    return float(log_probs[batch.decision_mask[rows]].mean())


def test_clipped_update_moves_the_code_policy_toward_positive_advantage():
    """SPEC A§6, §9.2 item 8: ``ppo_update`` raises the log-probability of the codes of episodes
    with a positive batch-normalised advantage (success) and lowers that of the others."""
    torch.manual_seed(0)
    policy = CodePolicy(width=6, latent_dim=8, hidden=5, initial_log_std=0.0)
    batch = hand_made_batch(policy, [1, 0, 0, 1, 0, 0, 1, 0])
    success, failure = batch.returns == 1, batch.returns == 0
    before = mean_log_prob(policy, batch, success), mean_log_prob(policy, batch, failure)
    optimizer = torch.optim.AdamW(policy.parameters(), lr=1e-2, weight_decay=0.0)
    stats = ppo_update(policy, optimizer, batch, ppo_config(epochs=2, minibatches=2), torch.Generator().manual_seed(0))
    after = mean_log_prob(policy, batch, success), mean_log_prob(policy, batch, failure)
    assert after[0] > before[0] + 0.05 and after[1] < before[1] - 0.05
    assert stats["zero_variance"] == 0.0 and 0.0 <= stats["clip_fraction"] <= 1.0


def test_update_takes_epochs_times_minibatches_steps_over_a_partition_of_the_batch():
    """§9.2 item 8: a fixed number of epochs × minibatches optimiser steps per batch (one step per
    batch leaves the clip inert); each epoch's minibatches are equal and cover every episode once."""
    torch.manual_seed(0)
    policy = CodePolicy(width=6, latent_dim=8, hidden=5, initial_log_std=0.0)
    batch = hand_made_batch(policy, [1, 0, 0, 1, 0, 0, 1, 0])
    episode_of = {batch.residuals[i].numpy().tobytes(): i for i in range(len(batch.returns))}
    minibatches = []
    original = policy.sequence_log_prob

    def recording_log_prob(residuals, codes):
        minibatches.append(sorted(episode_of[row.numpy().tobytes()] for row in residuals))
        return original(residuals, codes)

    policy.sequence_log_prob = recording_log_prob
    optimizer = torch.optim.AdamW(policy.parameters(), lr=1e-3)
    steps = []
    optimizer.register_step_post_hook(lambda *args: steps.append(1))
    ppo_update(policy, optimizer, batch, ppo_config(epochs=3, minibatches=4), torch.Generator().manual_seed(0))
    assert len(steps) == 3 * 4 and len(minibatches) == 3 * 4
    assert all(len(episodes) == 2 for episodes in minibatches)
    for epoch in range(3):
        assert sorted(sum(minibatches[4 * epoch : 4 * epoch + 4], [])) == list(range(8))


def test_zero_variance_batch_is_reported_and_leaves_the_policy_untouched():
    """§9.2 item 8: a batch whose returns are all equal has no advantage signal: it is counted
    (``zero_variance = 1``) and takes no optimiser step, even when Adam carries momentum from an
    earlier batch (a zero-gradient step would still move the policy)."""
    torch.manual_seed(0)
    policy = CodePolicy(width=6, latent_dim=8, hidden=5, initial_log_std=0.0)
    optimizer = torch.optim.AdamW(policy.parameters(), lr=1e-2)
    config = ppo_config(epochs=2, minibatches=2)
    first = hand_made_batch(policy, [1, 0, 0, 1, 0, 0, 1, 0])
    ppo_update(policy, optimizer, first, config, torch.Generator().manual_seed(0))
    before = {name: tensor.clone() for name, tensor in policy.state_dict().items()}
    steps = []
    optimizer.register_step_post_hook(lambda *args: steps.append(1))
    for returns in ([0] * 8, [1] * 8):
        batch = hand_made_batch(policy, returns, seed=1)
        stats = ppo_update(policy, optimizer, batch, config, torch.Generator().manual_seed(0))
        assert stats["zero_variance"] == 1.0
    assert not steps
    assert all(torch.equal(tensor, before[name]) for name, tensor in policy.state_dict().items())


def test_episodes_of_a_batch_get_distinct_layouts(monkeypatch, tmp_path):
    """§9.2 item 8: the batch-normalised advantage compares episodes with independent layouts;
    a batch collected in several chunks must not reuse one seed (duplicate layouts). The first
    observation of every episode (walls, colours, agent) differs across the whole run."""
    import agents.internal_rl as internal_rl

    first_observations = []
    make_vector_env = internal_rl.make_vector_env

    def recording_make_vector_env(*args, **kwargs):
        envs = make_vector_env(*args, **kwargs)
        reset = envs.reset

        def recording_reset(**reset_kwargs):
            observations, info = reset(**reset_kwargs)
            first_observations.append(np.array(observations, copy=True))
            return observations, info

        envs.reset = recording_reset
        return envs

    monkeypatch.setattr(internal_rl, "make_vector_env", recording_make_vector_env)
    torch.manual_seed(0)
    base = CausalTransformer(TRANSFORMER_PRESETS["smoke"])
    metacontroller = Metacontroller(base.config.width, MetacontrollerConfig())
    config = dataclasses.replace(INTERNAL_RL_PRESETS["smoke"], total_episodes=32, batch_episodes=16, rollout_envs=4,
                                 epochs=1, minibatches=1)
    train_internal_rl(config, base, metacontroller, tmp_path / "run", progress=False)
    assert len(first_observations) == 8  # 2 updates × 4 chunks of 4 envs
    layouts = np.concatenate(first_observations)
    assert len(np.unique(layouts, axis=0)) == 32


def test_frozen_base_model_and_metacontroller_are_bit_identical_after_internal_rl(tmp_path):
    """§9.2 item 7 in RL: after ``train_internal_rl`` the base model and the metacontroller (switching
    unit, history GRU, decoder) have bit-identical weights, are in eval mode without gradients,
    and the optimiser held only the policy's parameters."""
    from agents.checkpoints import load_checkpoint

    torch.manual_seed(0)
    base = CausalTransformer(TRANSFORMER_PRESETS["smoke"])  # as built: training mode, requires_grad
    metacontroller = Metacontroller(base.config.width, MetacontrollerConfig())
    before = {name: {key: value.clone() for key, value in module.state_dict().items()}
              for name, module in (("base", base), ("metacontroller", metacontroller))}
    config = dataclasses.replace(INTERNAL_RL_PRESETS["smoke"], total_episodes=16, batch_episodes=8, rollout_envs=8,
                                 epochs=2, minibatches=2, learning_rate=1e-2, weight_decay=0.1,
                                 env_kwargs={"task": [0]})  # a one-colour task: some episodes succeed
    path = train_internal_rl(config, base, metacontroller, tmp_path / "run", progress=False)
    for name, module in (("base", base), ("metacontroller", metacontroller)):
        after = module.state_dict()
        assert after.keys() == before[name].keys()
        assert all(torch.equal(after[key], before[name][key]) for key in after), name
        assert not module.training and not any(p.requires_grad for p in module.parameters()), name
    record = load_checkpoint(path)
    held = sum(len(group["params"]) for group in record["optimizer"]["param_groups"])
    assert held == len(record["model"]) == len(list(CodePolicy(32, 8, 4, 0.0).parameters()))
    assert not torch.equal(record["model"]["log_std"], torch.zeros(8))  # the policy was updated (weight decay on)


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
