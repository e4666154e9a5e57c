"""Metacontroller invariants from SPEC A§5 and the pitfalls of §9.2 (items 2–5, 7, 15)."""

import dataclasses

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from agents.metacontroller import Metacontroller, MetacontrollerConfig, metacontroller_loss
from agents.models.transformer import TRANSFORMER_PRESETS, CausalTransformer
from agents.switching_analysis import boundaries, match_events, switching_scores
from agents.train_metacontroller import METACONTROLLER_PRESETS, load_metacontroller, train_metacontroller
from hier_envs.datasets import generate_grid_dataset

WIDTH = 16


def make(**overrides):
    torch.manual_seed(0)
    return Metacontroller(WIDTH, MetacontrollerConfig(**overrides))


def sequences(batch=3, steps=7):
    generator = torch.Generator().manual_seed(1)
    residual = torch.randn(batch, steps, WIDTH, generator=generator)
    mask = torch.ones(batch, steps, dtype=torch.bool)
    mask[1, 5:] = False
    return residual, mask


def test_table_a9_sizes():
    config = MetacontrollerConfig()
    assert (config.latent_dim, config.history_size, config.embedding_size) == (8, 32, 32)
    assert (config.encoder_hidden, config.decoder_hidden, config.controller_rank) == (64, 32, 16)


@pytest.mark.parametrize("beta_value", [0.0, 1.0])
def test_temporal_integration_limits(beta_value, monkeypatch):
    metacontroller = make()
    residual, mask = sequences()
    monkeypatch.setattr(
        metacontroller, "switch_probability", lambda e, h, z, noise=None: torch.full((e.shape[0],), beta_value)
    )
    out = metacontroller(residual, mask, generator=torch.Generator().manual_seed(2))
    assert torch.all(out.beta[:, 0] == 1.0)  # forced first switch
    if beta_value == 0.0:  # β = 0 keeps z_{t-1}: the first code is held for the whole episode
        torch.testing.assert_close(out.z, out.z_tilde[:, :1].expand_as(out.z))
    else:  # β = 1 takes z̃_t
        torch.testing.assert_close(out.z, out.z_tilde)


def test_gradient_flows_through_the_hold_path():
    metacontroller = make()
    residual, mask = sequences()
    out = metacontroller(residual, mask, generator=torch.Generator().manual_seed(2))
    z_tilde_first = out.z_tilde
    grad = torch.autograd.grad(out.z[:, -1].sum(), z_tilde_first, retain_graph=True)[0]
    assert grad[:, 0].abs().sum() > 0  # z_T depends on z̃_1 through (1 - β) z_{t-1}
    switch_grads = torch.autograd.grad(out.z[:, -1].sum(), list(metacontroller.switch.parameters()))
    assert all(g.abs().sum() > 0 for g in switch_grads)  # β learns through the hold path


def test_rl_mode_replay_reproduces_training_betas():
    """§9.2 item 4: stepping history GRU + switching unit with the training z sequence gives the same β."""
    metacontroller = make()
    residual, mask = sequences()
    with torch.no_grad():
        out = metacontroller(residual, mask, sample=False)
        history = torch.zeros(residual.shape[0], 32)
        for t in range(residual.shape[1]):
            if t > 0:
                beta = metacontroller.switch_probability(residual[:, t], history, out.z[:, t - 1])
                torch.testing.assert_close(beta, out.beta[:, t], atol=1e-6, rtol=1e-5)
            history = metacontroller.history_step(residual[:, t], history)


def test_internal_rl_collection_reproduces_training_betas_for_a_replayed_code_sequence(monkeypatch):
    """§9.2 item 4 through the RL environment itself: ``InternalRLEnvironment.collect`` fed the
    training-time code sequence z_{1:T} computes, at every step, the same β_t as the
    metacontroller's training forward — its switching unit reads e_t, h_{t−1} and z_{t−1},
    with the history GRU stepped exactly as in training.

    A scripted policy emits ``z[row, t]`` at step t; a threshold of 0 hands it every step, so the
    code held at t − 1 is exactly the training z_{t−1}. The decoder is zeroed (U = 0): the
    trajectory then does not depend on the codes, and a first pass gives the residuals on which
    the training forward computes z and β."""
    from agents.internal_rl import CachedStepper, CodePolicy, InternalRLEnvironment

    class ScriptedCodes(CodePolicy):
        """Emits ``codes[row, t]`` at its t-th decision in env row ``row`` (the state carries both);
        a std of e^-60 makes the sampled code its mean."""

        def __init__(self, width, codes):
            super().__init__(width, codes.shape[-1], hidden=2, initial_log_std=-60.0)
            self.codes = codes

        def initial_state(self, batch):
            return torch.stack([torch.arange(batch), torch.zeros(batch, dtype=torch.long)], 1).float()

        def step(self, residual, state):
            rows, t = state[:, 0].long(), state[:, 1].long().clamp(max=self.codes.shape[1] - 1)
            return state + torch.tensor([0.0, 1.0]), self.codes[rows, t]

    class RecordingStepper(CachedStepper):
        def reset(self, num_envs, max_steps):
            super().reset(num_envs, max_steps)
            self.residuals = []

        def lower(self, obs):
            residual = super().lower(obs)
            self.residuals.append(residual.clone())
            return residual

    torch.manual_seed(0)
    base = CausalTransformer(TRANSFORMER_PRESETS["smoke"])
    metacontroller = Metacontroller(base.config.width, MetacontrollerConfig())
    with torch.no_grad():  # U(z) = 0: the controlled residual is e_t whatever the code
        metacontroller.decoder[-1].weight.zero_()
        metacontroller.decoder[-1].bias.zero_()
    n, latent = 6, metacontroller.config.latent_dim
    environment = InternalRLEnvironment(base, metacontroller, "HierGrid-v0", n, switch_threshold=0.0)
    horizon = environment.max_steps

    def collect(codes):
        stepper = RecordingStepper(base, environment.layer)
        batch = environment.collect(ScriptedCodes(base.config.width, codes), seed=2,
                                    generator=torch.Generator().manual_seed(0), stepper=stepper)
        return batch, torch.stack(stepper.residuals, 1)  # (n, T, W)

    first, residual = collect(torch.zeros(n, horizon, latent))
    mask = torch.arange(residual.shape[1])[None] < torch.as_tensor(first.lengths)[:, None]  # (n, T)
    with torch.no_grad():
        out = metacontroller(residual, mask, sample=False)  # training-time z and β on these residuals
    codes = F.pad(out.z, (0, 0, 0, horizon - residual.shape[1]))
    betas = []
    switch_probability = metacontroller.switch_probability

    def recording_switch_probability(*args, **kwargs):
        betas.append(switch_probability(*args, **kwargs))
        return betas[-1]

    monkeypatch.setattr(metacontroller, "switch_probability", recording_switch_probability)
    replayed, replayed_residual = collect(codes)
    torch.testing.assert_close(replayed_residual, residual)  # the same trajectory
    assert torch.equal(replayed.decision_mask.sum(1), torch.as_tensor(first.lengths))  # a decision every step
    torch.testing.assert_close(replayed.codes[replayed.decision_mask], out.z[mask])  # fed exactly the training z
    rl_beta = torch.stack([torch.ones(n), *betas], 1)  # (n, T), β_1 = 1 as in training
    later = mask.clone()
    later[:, 0] = False
    assert later.sum() >= 20 and out.beta[later].std() > 0.02  # many steps, β not constant
    torch.testing.assert_close(rl_beta[later], out.beta[later], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("embedding", ["sequence", "per_step"])
def test_embedder_is_non_causal_and_ignores_padding(embedding):
    metacontroller = make(embedding=embedding)
    residual, mask = sequences()
    lengths = mask.sum(1)
    with torch.no_grad():
        base = metacontroller.embed_sequence(residual, lengths)
        future_changed = residual.clone()
        future_changed[:, -1] += 1.0
        changed = metacontroller.embed_sequence(future_changed, lengths)
        assert (changed[0, 0] - base[0, 0]).abs().max() > 0  # step 0 sees the future
        torch.testing.assert_close(changed[1, :5], base[1, :5])  # row 1's padding (t >= 5) is invisible
        if embedding == "sequence":  # one summary per sequence, the same at every step
            torch.testing.assert_close(base[:, 0:1].expand_as(base), base)


def test_kl_is_summed_over_dims_and_not_beta_weighted():
    metacontroller = make()
    residual, mask = sequences()
    out = metacontroller(residual, mask, generator=torch.Generator().manual_seed(2))
    expected = 0.5 * (out.mean**2 + out.log_var.exp() - 1 - out.log_var).sum(-1)
    torch.testing.assert_close(out.kl, expected)
    nll = torch.rand(mask.shape, generator=torch.Generator().manual_seed(3))
    nll[~mask] = 1e6  # padding never counts
    losses = metacontroller_loss(nll, mask, out, kl_weight=0.5)
    kl_mean = (out.kl * mask).sum() / mask.sum()
    torch.testing.assert_close(losses["kl"], kl_mean)
    torch.testing.assert_close(losses["action_nll"], nll[mask].mean())
    torch.testing.assert_close(losses["loss"], losses["action_nll"] + 0.5 * kl_mean)
    with pytest.raises(ValueError, match="mask's shape"):
        metacontroller_loss(nll[:, :-1], mask, out, kl_weight=0.5)


def test_force_switch_ablation():
    metacontroller = make(force_switch=True)
    residual, mask = sequences()
    out = metacontroller(residual, mask, generator=torch.Generator().manual_seed(2))
    assert torch.all(out.beta == 1.0)


def test_linear_controller_variant():
    metacontroller = make(controller="linear")
    residual, mask = sequences()
    out = metacontroller(residual, mask, sample=False)
    u = metacontroller.decode(out.z)
    assert u.shape == (*mask.shape, WIDTH, WIDTH)
    torch.testing.assert_close(out.controlled, residual + (u @ residual[..., None])[..., 0])


def test_training_is_resumable_and_keeps_base_frozen(tmp_path):
    torch.manual_seed(0)
    base = CausalTransformer(TRANSFORMER_PRESETS["smoke"])
    before = [p.clone() for p in base.parameters()]
    dataset = generate_grid_dataset(40, 0.0, seed=0, progress=False)
    config = dataclasses.replace(METACONTROLLER_PRESETS["smoke"], train_steps=12, log_every=4, checkpoint_every=4)
    straight = train_metacontroller(config, base, dataset, tmp_path / "a", progress=False)
    train_metacontroller(config, base, dataset, tmp_path / "b", stop_after=8, progress=False)
    resumed = train_metacontroller(config, base, dataset, tmp_path / "b", progress=False)
    a, b = load_metacontroller(straight, 32), load_metacontroller(resumed, 32)
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    assert all(torch.equal(x, y) for x, y in zip(before, base.parameters()))
    assert not any(p.requires_grad for p in base.parameters())


def test_switch_matching_and_scores():
    assert boundaries(np.array([0, 0, 2, 2, 2, 1])).tolist() == [2, 5]
    assert match_events(np.array([3, 9]), np.array([2, 5]), tolerance=1) == (1, 1, 1)
    for bad in (-3, 1.5, True):  # a negative tolerance would silently score F1 = 0
        with pytest.raises(ValueError, match="tolerance"):
            match_events(np.array([3]), np.array([2]), tolerance=bad)
    perfect = [(np.array([1.0, 0.0, 1.0, 0.0, 0.0, 1.0]), np.array([0, 0, 2, 2, 2, 1]))]
    scores = switching_scores(perfect)
    assert scores["f1"] == 1.0 and scores["switches_per_episode"] == 2.0
    early = [(np.array([1.0, 0.9, 0.0, 0.0, 0.0, 0.0]), np.array([0, 0, 0, 0, 2, 2]))]
    assert switching_scores(early)["f1"] == 0.0
    # a boundary marked twice (t = 2, 3) and one missed (t = 5): where the precision goes
    doubled = switching_scores([(np.array([1.0, 0.0, 0.9, 0.8, 0.0, 0.1]), np.array([0, 0, 2, 2, 2, 1]))])
    assert doubled["precision"] == 0.5 and doubled["recall"] == 0.5
    assert doubled["unmatched_switches_per_episode"] == 1.0 and doubled["consecutive_switches_per_episode"] == 1.0
    assert doubled["beta_mean_at_boundaries"] == pytest.approx(0.5)
    assert doubled["beta_mean_elsewhere"] == pytest.approx(0.8 / 3)


def test_cotraining_trains_a_fresh_base_model(tmp_path):
    from agents.train_metacontroller import load_cotrained_base_model

    torch.manual_seed(0)
    pretrained = CausalTransformer(TRANSFORMER_PRESETS["smoke"])
    before = [p.clone() for p in pretrained.parameters()]
    dataset = generate_grid_dataset(30, 0.0, seed=0, progress=False)
    config = dataclasses.replace(METACONTROLLER_PRESETS["smoke"], train_steps=6, log_every=3, checkpoint_every=3, cotrain=True)
    path = train_metacontroller(config, pretrained, dataset, tmp_path / "co", progress=False)
    cotrained = load_cotrained_base_model(path)
    assert all(torch.equal(a, b) for a, b in zip(before, pretrained.parameters()))  # the pretrained model is untouched
    assert not all(torch.equal(a, b) for a, b in zip(before, cotrained.parameters()))


def test_kl_warmup_schedule():
    from agents.train_metacontroller import kl_weight_at

    config = dataclasses.replace(
        METACONTROLLER_PRESETS["smoke"], metacontroller=MetacontrollerConfig(kl_weight=0.5), kl_warmup_steps=10
    )
    assert [kl_weight_at(step, config) for step in (0, 5, 10, 50)] == [0.0, 0.25, 0.5, 0.5]
    assert kl_weight_at(0, dataclasses.replace(config, kl_warmup_steps=0)) == 0.5
    with pytest.raises(ValueError, match="kl_warmup_steps"):
        dataclasses.replace(config, kl_warmup_steps=-1)


def test_initialisation_options():
    metacontroller = make(switch_bias_init=3.0, encoder_log_var_init=-2.0)
    residual, mask = sequences()
    out = metacontroller(residual, mask, sample=False)
    assert out.beta[:, 1:].mean() > 0.85  # β starts near sigmoid(3)
    torch.testing.assert_close(out.log_var.mean(), torch.tensor(-2.0), atol=0.3, rtol=0)


def test_early_kl_weight_phase():
    """``early_kl_weight`` holds for exactly ``early_kl_steps`` optimiser steps, then the configured α."""
    from agents.train_metacontroller import kl_weight_at

    smoke = METACONTROLLER_PRESETS["smoke"]
    config = dataclasses.replace(smoke, metacontroller=MetacontrollerConfig(kl_weight=0.1), early_kl_weight=0.01,
                                 early_kl_steps=3)
    assert [kl_weight_at(step, config) for step in (0, 2, 3, 50)] == [0.01, 0.01, 0.1, 0.1]
    assert kl_weight_at(0, smoke) == smoke.metacontroller.kl_weight
    ramp = dataclasses.replace(config, kl_warmup_steps=4)  # after the early phase: 0.01 -> 0.1 over 4 steps
    assert [kl_weight_at(step, ramp) for step in (2, 3, 5, 7, 50)] == pytest.approx([0.01, 0.01, 0.055, 0.1, 0.1])
    for bad in ({"early_kl_weight": 0.01}, {"early_kl_steps": 5}, {"early_kl_weight": -0.1, "early_kl_steps": 5},
                {"early_kl_weight": float("nan"), "early_kl_steps": 5}, {"early_kl_weight": 0.01, "early_kl_steps": -1},
                {"early_kl_weight": 0.01, "early_kl_steps": smoke.train_steps}):
        with pytest.raises(ValueError, match="early_kl"):
            dataclasses.replace(smoke, **bad)
    with pytest.raises(TypeError, match="early_kl_weight"):
        dataclasses.replace(smoke, early_kl_weight="0.01", early_kl_steps=5)


def test_early_kl_phase_changes_training_only_after_it_ends(tmp_path):
    """A run with an early phase is the constant-α run at the early α up to the phase's end and
    departs from it after (the schedule is applied, and at the right step)."""
    torch.manual_seed(0)
    base = CausalTransformer(TRANSFORMER_PRESETS["smoke"])
    dataset = generate_grid_dataset(20, 0.0, seed=0, progress=False)
    smoke = dataclasses.replace(METACONTROLLER_PRESETS["smoke"], train_steps=4, log_every=1, checkpoint_every=2)
    constant = dataclasses.replace(smoke, metacontroller=dataclasses.replace(smoke.metacontroller, kl_weight=0.01))
    phased = dataclasses.replace(smoke, metacontroller=dataclasses.replace(smoke.metacontroller, kl_weight=1.0),
                                 early_kl_weight=0.01, early_kl_steps=2)
    losses = {}
    for name, config in (("constant", constant), ("phased", phased)):
        train_metacontroller(config, base, dataset, tmp_path / name, progress=False)
        rows = (tmp_path / name / "metrics.csv").read_text().splitlines()[1:]
        losses[name] = [float(row.split(",")[1]) for row in rows]
    assert losses["constant"][:2] == losses["phased"][:2]
    assert losses["constant"][2] != losses["phased"][2]


def test_gumbel_sigmoid_switching_only_when_sampling():
    """SPEC A§5.2: Gumbel-Sigmoid β in training runs; analysis and RL use the deterministic β."""
    residual, mask = sequences(batch=64, steps=12)
    plain = make()
    noisy = make(switch_gumbel_temperature=0.5)
    noisy.load_state_dict(plain.state_dict())
    deterministic = plain(residual, mask, sample=False).beta
    assert torch.equal(noisy(residual, mask, sample=False).beta, deterministic)
    sampled = noisy(residual, mask, generator=torch.Generator().manual_seed(3)).beta[:, 1:]
    assert torch.all((sampled >= 0) & (sampled <= 1))
    assert not torch.allclose(sampled, deterministic[:, 1:])
    # a low temperature pushes the samples to the ends of [0, 1]
    colder = make(switch_gumbel_temperature=0.05)
    colder.load_state_dict(plain.state_dict())
    cold = colder(residual, mask, generator=torch.Generator().manual_seed(3)).beta[:, 1:]
    extreme = lambda b: float(((b < 0.05) | (b > 0.95)).float().mean())  # noqa: E731
    assert extreme(cold) > 0.8 > extreme(deterministic[:, 1:])
    with pytest.raises(ValueError, match="switch_gumbel_temperature"):
        MetacontrollerConfig(switch_gumbel_temperature=-1.0)


def test_slower_switching_unit_learns_at_its_own_rate(tmp_path):
    """``switch_learning_rate_scale`` puts the switching unit in its own AdamW group; one Adam step
    moves each weight by about its group's rate, so the switching unit moves ~scale × as far."""
    from agents.train_metacontroller import build_optimizer

    torch.manual_seed(0)
    base = CausalTransformer(TRANSFORMER_PRESETS["smoke"])
    dataset = generate_grid_dataset(20, 0.0, seed=0, progress=False)
    moves = {}
    for scale in (1.0, 0.01):
        config = dataclasses.replace(METACONTROLLER_PRESETS["smoke"], train_steps=1, weight_decay=0.0,
                                     switch_learning_rate_scale=scale)
        torch.manual_seed(config.seed)
        initial = Metacontroller(32, config.metacontroller)
        trained = load_metacontroller(train_metacontroller(config, base, dataset, tmp_path / str(scale), progress=False), 32)
        moves[scale] = {
            part: max(float((a - b).abs().max()) for a, b in zip(getattr(trained, part).state_dict().values(),
                                                               getattr(initial, part).state_dict().values()))
            for part in ("switch", "decoder")
        }
        groups = build_optimizer(config, [], initial).param_groups
        assert [len(g["params"]) for g in groups] == ([len(list(initial.parameters()))] if scale == 1.0 else
                                                       [len(list(initial.parameters())) - len(list(initial.switch.parameters())),
                                                        len(list(initial.switch.parameters()))])
    lr = METACONTROLLER_PRESETS["smoke"].learning_rate
    assert moves[1.0]["switch"] == pytest.approx(lr, rel=0.05)
    assert moves[0.01]["switch"] == pytest.approx(0.01 * lr, rel=0.05)
    assert moves[0.01]["decoder"] == pytest.approx(lr, rel=0.05)  # the rest keeps the full rate
    for bad, error in ((0.0, ValueError), (float("nan"), ValueError), ("0.1", TypeError), (True, TypeError)):
        with pytest.raises(error, match="switch_learning_rate_scale"):
            dataclasses.replace(METACONTROLLER_PRESETS["smoke"], switch_learning_rate_scale=bad)


def test_runs_saved_before_the_switch_rate_option_still_resume(tmp_path):
    """A checkpoint whose stored config predates ``switch_learning_rate_scale`` resumes with the
    default (1.0) and refuses any other value, naming the file."""
    from agents.checkpoints import CheckpointError, load_checkpoint, save_checkpoint

    torch.manual_seed(0)
    base = CausalTransformer(TRANSFORMER_PRESETS["smoke"])
    dataset = generate_grid_dataset(20, 0.0, seed=0, progress=False)
    config = dataclasses.replace(METACONTROLLER_PRESETS["smoke"], train_steps=4, log_every=2, checkpoint_every=2)
    train_metacontroller(config, base, dataset, tmp_path / "old", stop_after=2, progress=False)
    latest = tmp_path / "old" / "latest.pt"
    record = load_checkpoint(latest)
    del record["config"]["switch_learning_rate_scale"]  # as written before the option existed
    save_checkpoint(latest, record)
    with pytest.raises(CheckpointError, match="latest.pt"):
        train_metacontroller(dataclasses.replace(config, switch_learning_rate_scale=0.1), base, dataset, tmp_path / "old",
                             progress=False)
    assert train_metacontroller(config, base, dataset, tmp_path / "old", progress=False).name == "metacontroller.pt"



def test_a_run_directory_is_refused_for_other_data_layer_or_backbone(tmp_path):
    """The config alone does not name the data, the insertion layer or the frozen backbone: a
    run made from other ones is refused on resume and on reuse, and a metacontroller is not
    loaded for another layer (SPEC B4)."""
    from agents.checkpoints import CheckpointError

    torch.manual_seed(0)
    base = CausalTransformer(TRANSFORMER_PRESETS["smoke"])
    other_base = CausalTransformer(TRANSFORMER_PRESETS["smoke"])  # same config, other weights
    dataset = generate_grid_dataset(20, 0.0, seed=0, progress=False)
    other_dataset = generate_grid_dataset(20, 0.0, seed=1, progress=False)
    config = dataclasses.replace(METACONTROLLER_PRESETS["smoke"], train_steps=4, log_every=2, checkpoint_every=2)
    layer = base.config.controlled_layer
    train_metacontroller(config, base, dataset, tmp_path / "run", stop_after=2, progress=False)
    for other in ({"base_model": other_base}, {"dataset": other_dataset}, {"controlled_layer": layer + 1}):
        arguments = {"base_model": base, "dataset": dataset, **other}
        with pytest.raises(CheckpointError, match="latest.pt.*another"):
            train_metacontroller(config, run_dir=tmp_path / "run", progress=False, **arguments)
    final = train_metacontroller(config, base, dataset, tmp_path / "run", progress=False)
    with pytest.raises(CheckpointError, match="metacontroller.pt.*another base_model_fingerprint"):
        train_metacontroller(config, other_base, dataset, tmp_path / "run", progress=False)
    assert train_metacontroller(config, base, dataset, tmp_path / "run", progress=False) == final
    load_metacontroller(final, base.config.width, layer)
    with pytest.raises(CheckpointError, match=f"trained at layer {layer}, expected layer {layer + 1}"):
        load_metacontroller(final, base.config.width, layer + 1)

@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_training_on_the_gpu_leaves_the_callers_base_model_on_the_cpu(tmp_path):
    torch.manual_seed(0)
    base = CausalTransformer(TRANSFORMER_PRESETS["smoke"])
    dataset = generate_grid_dataset(40, 0.0, seed=0, progress=False)
    config = dataclasses.replace(METACONTROLLER_PRESETS["smoke"], train_steps=8, log_every=4, checkpoint_every=4)
    path = train_metacontroller(config, base, dataset, tmp_path / "gpu", progress=False, device="cuda")
    metacontroller = load_metacontroller(path, 32)
    assert all(p.device.type == "cpu" for p in (*metacontroller.parameters(), *base.parameters()))


def test_unavailable_device_is_refused_before_anything_is_written(tmp_path):
    base = CausalTransformer(TRANSFORMER_PRESETS["smoke"])
    dataset = generate_grid_dataset(8, 0.0, seed=0, progress=False)
    missing = "cuda:99" if torch.cuda.is_available() else "cuda"
    with pytest.raises(ValueError, match=f"device '{missing}'"):
        train_metacontroller(METACONTROLLER_PRESETS["smoke"], base, dataset, tmp_path / "run", progress=False,
                             device=missing)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("overrides, error", [
    ({"learning_rate": 0.0}, ValueError), ({"weight_decay": -0.1}, ValueError), ({"seed": -1}, ValueError),
    ({"cotrain": "yes"}, TypeError), ({"cotrain_init": "scratch"}, ValueError), ({"num_threads": 0}, ValueError),
])
def test_train_config_refuses_values_that_would_train_nothing_or_something_else(overrides, error):
    with pytest.raises(error, match=next(iter(overrides))):
        dataclasses.replace(METACONTROLLER_PRESETS["smoke"], **overrides)


@pytest.mark.parametrize("overrides, error", [
    ({"init_scale": -1.0}, ValueError), ({"kl_weight": float("inf")}, ValueError),
    ({"switch_gumbel_temperature": float("inf")}, ValueError), ({"switch_bias_init": float("nan")}, ValueError),
    ({"kl_weight": "0.1"}, TypeError), ({"force_switch": 1}, TypeError),
])
def test_architecture_config_refuses_bad_numbers(overrides, error):
    with pytest.raises(error, match=next(iter(overrides))):
        MetacontrollerConfig(**overrides)


def test_residual_table_cap_is_refused_where_it_cannot_apply(tmp_path):
    """``residual_table_max_bytes`` caps the frozen model's residual table: a co-trained base model
    has none, and a cap that is not an int >= 0 names the keyword, before anything trains."""
    import dataclasses

    from agents.models.base_models import build_base_model
    from agents.models.transformer import TRANSFORMER_PRESETS
    from agents.train_metacontroller import METACONTROLLER_PRESETS, train_metacontroller
    from hier_envs.datasets import generate_grid_dataset

    smoke = METACONTROLLER_PRESETS["smoke"]
    model = build_base_model(TRANSFORMER_PRESETS["smoke"])
    dataset = generate_grid_dataset(3, 0.0, 0, progress=False)
    with pytest.raises(ValueError, match="co-trains"):
        train_metacontroller(dataclasses.replace(smoke, cotrain=True), model, dataset, tmp_path / "a", progress=False,
                             residual_table_max_bytes=0)
    for bad in (-1, 1.5, True):
        with pytest.raises(ValueError, match="residual_table_max_bytes"):
            train_metacontroller(smoke, model, dataset, tmp_path / "b", progress=False, residual_table_max_bytes=bad)
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
