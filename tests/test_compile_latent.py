"""CompILE baseline (SPEC A§7.1 item 2, Table A11, §9.2 item 16): segmentation invariants, the
controller, the internal-RL switching rule and the trainer's resume/determinism round trips."""

import dataclasses
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from agents.baselines.compile_latent import (
    COMPILE_PRESETS,
    CompileConfig,
    CompileLatent,
    CompileOutput,
    CompileTrainConfig,
    compile_loss,
    load_compile,
    train_compile,
    truncated_poisson_log_prior,
)
from agents.checkpoints import CheckpointError, load_checkpoint
from agents.models.transformer import TRANSFORMER_PRESETS, CausalTransformer
from agents.pretrain import batch_tensors, load_base_model
from hier_envs.datasets import generate_grid_dataset

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def dataset():
    return generate_grid_dataset(40, 0.0, seed=0, progress=False)


def make(**overrides):
    torch.manual_seed(0)
    base = CausalTransformer(TRANSFORMER_PRESETS["smoke"])
    return CompileLatent(base, CompileConfig(**overrides)), base


def episodes(dataset, n=8):
    return batch_tensors(dataset, np.arange(n))


def run(model, batch, sample, seed=3):
    return model(batch["observations"], batch["actions"], batch["mask"],
                 generator=torch.Generator().manual_seed(seed), sample=sample)


# ------------------------------------------------------------------------------ configuration
def test_table_a11_defaults_and_presets():
    config = CompileConfig()
    assert (config.latent_dim, config.max_segments, config.latent_hidden, config.controller_rank) == (8, 4, 32, 16)
    assert config.prior_rate == 10.0 and config.controller == "low_rank"
    paper = COMPILE_PRESETS["paper"]
    assert (paper.train_steps, paper.batch_size, paper.learning_rate, paper.weight_decay) == (32_000, 512, 1e-3, 0.03)
    assert (COMPILE_PRESETS["default"].train_steps, COMPILE_PRESETS["default"].batch_size) == (2000, 128)
    assert COMPILE_PRESETS["smoke"].train_steps < 100


@pytest.mark.parametrize(
    ("overrides", "name"),
    [({"max_segments": 0}, "max_segments"), ({"latent_dim": 2.5}, "latent_dim"), ({"controller": "diag"}, "controller"),
     ({"kl_weight_z": -1.0}, "kl_weight_z"), ({"kl_weight_b": "big"}, "kl_weight_b"),
     ({"gumbel_temperature": 0.0}, "gumbel_temperature"), ({"prior_rate": math.nan}, "prior_rate"),
     ({"rl_steps_per_code": 0}, "rl_steps_per_code"), ({"encoder_size": True}, "encoder_size")],
)
def test_bad_model_config_names_the_value(overrides, name):
    with pytest.raises(ValueError, match=name):
        CompileConfig(**overrides)


def test_bad_train_config_names_the_value():
    for overrides, name in (({"train_steps": 0}, "train_steps"), ({"batch_size": -4}, "batch_size"),
                            ({"learning_rate": 0.0}, "learning_rate"),
                            ({"segment_length_episodes": 0}, "segment_length")):
        with pytest.raises(ValueError, match=name):
            CompileTrainConfig(**overrides)
    with pytest.raises(TypeError, match="CompileConfig"):
        CompileTrainConfig(model={"latent_dim": 8})


# ------------------------------------------------------------------------------ segmentation
@pytest.mark.parametrize("sample", [True, False])
def test_segment_masks_partition_every_valid_step(dataset, sample):
    model, _ = make()
    batch = episodes(dataset)
    out = run(model, batch, sample)
    n, steps = batch["mask"].shape
    lengths = batch["mask"].sum(1)
    assert out.segment_masks.shape == (n, 4, steps) and out.boundaries.shape == (n, 4, steps + 1)
    assert out.codes.shape == out.mean.shape == out.log_var.shape == (n, 4, 8)
    assert out.kl_z.shape == out.kl_b.shape == (n,)
    totals = out.segment_masks.sum(1)[batch["mask"]]
    torch.testing.assert_close(totals, torch.ones_like(totals), atol=1e-5, rtol=0)
    assert out.segment_masks.min() >= -1e-6 and out.segment_masks.max() <= 1 + 1e-6
    # boundaries never before the first step nor past the end marker; the last segment ends at n
    assert torch.all(out.boundaries[:, :, 0] == 0)
    beyond = torch.arange(steps + 1)[None] > lengths[:, None]  # (B, P)
    assert torch.all(out.boundaries[beyond[:, None].expand_as(out.boundaries)] < 1e-6)
    assert torch.all(out.boundaries[:, -1].argmax(-1) == lengths)
    if not sample:  # hard segments: each step in exactly one segment, segment ids non-decreasing in time
        hard = out.segment_masks[batch["mask"][:, None].expand_as(out.segment_masks)]
        assert set(hard.unique().tolist()) <= {0.0, 1.0}
        segment_id = out.segment_masks.argmax(1)  # (B, T)
        for row in range(n):
            ids = segment_id[row, : lengths[row]]
            assert torch.all(ids[1:] >= ids[:-1])


def test_masked_encoder_matches_gru_cell_and_restarts_at_a_boundary():
    model, _ = make(encoder_size=12)
    generator = torch.Generator().manual_seed(5)
    inputs = torch.randn(3, 9, model.encoder.input_size, generator=generator)
    states = model.masked_encode(inputs, torch.ones(3, 9))
    hidden, expected = torch.zeros(3, 12), []
    for t in range(9):
        hidden = model.encoder(inputs[:, t], hidden)
        expected.append(hidden)
    torch.testing.assert_close(states, torch.stack(expected, 1), atol=1e-6, rtol=1e-5)
    reset = torch.ones(3, 9)
    reset[:, 4] = 0.0  # a hard boundary: the state restarts after step 4
    changed = inputs.clone()
    changed[:, :5] = torch.randn(3, 5, inputs.shape[-1], generator=generator)
    torch.testing.assert_close(model.masked_encode(inputs, reset)[:, 5:], model.masked_encode(changed, reset)[:, 5:])


def test_truncated_poisson_prior_is_normalised_over_each_valid_length():
    lengths = torch.tensor([1, 3, 7])
    log_prior = truncated_poisson_log_prior(lengths, 8, rate=10.0)  # (3, 8)
    prior = log_prior.exp()
    torch.testing.assert_close(prior.sum(-1), torch.ones(3))
    assert prior[0, 1] == pytest.approx(1.0) and torch.all(prior[:, 0] == 0) and torch.all(prior[1, 4:] == 0)
    # inside the support the ratio is Poisson's: p(n+1) / p(n) = λ / (n + 1)
    assert float(prior[2, 4] / prior[2, 3]) == pytest.approx(10.0 / 4.0, rel=1e-5)


class FixedLogits(nn.Module):
    """Boundary head replaced by the unnormalised Poisson log-pmf of each position."""

    def __init__(self, rate: float) -> None:
        super().__init__()
        self.rate = rate

    def forward(self, states):
        positions = torch.arange(states.shape[1], dtype=torch.float32)
        logits = positions * math.log(self.rate) - self.rate - torch.lgamma(positions + 1.0)
        return logits[None, :, None].expand(states.shape[0], -1, 1)


def test_kl_terms(dataset):
    model, _ = make()
    batch = episodes(dataset)
    out = run(model, batch, sample=True)
    manual = 0.5 * (out.mean.pow(2) + out.log_var.exp() - 1.0 - out.log_var)  # (B, M, Z)
    torch.testing.assert_close(out.kl_z, manual.sum((1, 2)))  # summed over dims and segments
    assert torch.all(out.kl_b >= 0) and out.kl_b.max() > 0
    model.boundary_head = FixedLogits(model.config.prior_rate)  # q(b_0) = the truncated prior
    torch.testing.assert_close(run(model, batch, sample=True).kl_b, torch.zeros(len(out.kl_b)), atol=1e-4, rtol=0)


def test_encoder_reads_the_actions_of_valid_steps_only(dataset):
    """SPEC §9.2 item 16 (the *state–action* CompILE) and A§7.1: the inference network reads
    each valid step's action, so the same observations with other actions give other segment
    codes; actions at padded steps are never read (the outputs are bit-identical)."""
    model, _ = make()
    batch = episodes(dataset)
    valid = batch["mask"]
    inputs = model.encoder_inputs(batch["observations"], batch["actions"], valid)  # (B, P, W + A + 1)
    one_hot = inputs[:, :-1, model.width : model.width + model.n_actions]  # (B, T, A)
    torch.testing.assert_close(one_hot[valid], F.one_hot(batch["actions"][valid], model.n_actions).float())
    assert torch.all(one_hot[~valid] == 0)

    out = run(model, batch, sample=False)
    other_actions = torch.where(valid, (batch["actions"] + 1) % model.n_actions, batch["actions"])
    other = run(model, {**batch, "actions": other_actions}, sample=False)
    assert not torch.allclose(other.mean, out.mean, atol=1e-3)  # same observations, other actions
    assert not torch.allclose(other.kl_b, out.kl_b, atol=1e-4)  # the boundary distribution moved too

    padded_actions = torch.where(valid, batch["actions"], (batch["actions"] + 2) % model.n_actions)
    padded = run(model, {**batch, "actions": padded_actions}, sample=False)
    for name in ("segment_masks", "boundaries", "codes", "mean", "log_var", "kl_z", "kl_b"):
        assert torch.equal(getattr(padded, name), getattr(out, name)), name


def fixed_output(segment_masks, kl_z, kl_b):
    """A CompileOutput carrying only what :func:`compile_loss` reads (the rest is zeros)."""
    batch, segments, _ = segment_masks.shape
    zeros = torch.zeros(batch, segments, 8)
    return CompileOutput(segment_masks=segment_masks, boundaries=torch.zeros(batch, segments, 5), codes=zeros,
                         mean=zeros, log_var=zeros, kl_z=kl_z, kl_b=kl_b)


def test_compile_loss_by_hand_and_blind_to_padding():
    """SPEC §9.2 item 16 and the compile_loss docstring: loss = (Σ_valid NLL + α_z Σ KL_z + α_β Σ KL_β)
    / (number of valid steps); padded steps (huge logits, wrong actions, full segment masks
    there) change nothing, neither the loss nor the reported metrics."""
    mask = torch.tensor([[True, True, True, True], [True, True, False, False]])
    logits = torch.randn(2, 4, 4, generator=torch.Generator().manual_seed(0))
    actions = torch.tensor([[0, 3, 1, 2], [2, 1, 0, 0]])
    segment_masks = torch.tensor([[[1.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 1.0]],
                                  [[1.0, 1.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]]])  # (B, M, T): 2 and 1 segments
    output = fixed_output(segment_masks, kl_z=torch.tensor([0.3, 0.7]), kl_b=torch.tensor([1.1, 0.2]))
    losses = compile_loss(logits, actions, mask, output, 0.1, 0.5)

    log_p = torch.log_softmax(logits, -1)
    nll = [-float(log_p[b, t, actions[b, t]]) for b in range(2) for t in range(4) if mask[b, t]]
    assert len(nll) == 6
    expected_loss = (sum(nll) + 0.1 * (0.3 + 0.7) + 0.5 * (1.1 + 0.2)) / 6
    assert float(losses["loss"]) == pytest.approx(expected_loss, rel=1e-6)
    assert float(losses["action_nll"]) == pytest.approx(sum(nll) / 6, rel=1e-6)
    assert float(losses["kl_z"]) == pytest.approx(0.5) and float(losses["kl_b"]) == pytest.approx(0.65)
    assert float(losses["segments_per_episode"]) == 1.5

    poisoned_logits, poisoned_actions, poisoned_masks = logits.clone(), actions.clone(), segment_masks.clone()
    poisoned_logits[~mask] = torch.tensor([1e4, -1e4, -1e4, -1e4])  # NLL 2e4 on each padded step...
    poisoned_actions[~mask] = 3  # ...whose (meaningless) action is another one
    poisoned_masks[1, 1, 2:] = 1.0  # a "segment" made of padding only
    poisoned = compile_loss(poisoned_logits, poisoned_actions, mask, fixed_output(poisoned_masks, output.kl_z,
                                                                                   output.kl_b), 0.1, 0.5)
    for key, value in losses.items():
        torch.testing.assert_close(poisoned[key], value, msg=key)


# ------------------------------------------------------------------------------ controller
def test_each_step_is_controlled_by_its_segments_code(dataset):
    model, base = make()
    batch = episodes(dataset)
    out = run(model, batch, sample=False)
    residual = base.forward_lower(batch["observations"], 1)  # (B, T, W)
    controlled = model.controlled_residual(residual, out)
    segment_id = out.segment_masks.argmax(1)  # (B, T)
    own_codes = torch.gather(out.codes, 1, segment_id[..., None].expand(-1, -1, 8))  # (B, T, Z)
    a, b = model.decode(own_codes)  # (B, T, W, r) each
    explicit = residual + ((a @ b.transpose(-1, -2)) @ residual[..., None])[..., 0]  # e + U e, U built explicitly
    valid = batch["mask"]
    torch.testing.assert_close(controlled[valid], explicit[valid], atol=1e-4, rtol=1e-4)
    direct = model.apply_controller(residual, own_codes)  # the RL-time call
    torch.testing.assert_close(direct[valid], explicit[valid], atol=1e-4, rtol=1e-4)


def test_linear_controller_variant(dataset):
    """SPEC A§5.1 items 6–7 (Table A12's full linear controller) and §9.2 item 1: with
    ``controller="linear"`` the decoder emits a full ``U (W × W)`` and every valid step becomes
    ``e + U(z_k) e`` for its own segment's code, checked against the product built explicitly."""
    model, base = make(controller="linear")
    z = torch.randn(2, 8)
    assert model.decode(z).shape == (2, 32, 32)
    batch = episodes(dataset, 4)
    out = run(model, batch, sample=False)
    residual = base.forward_lower(batch["observations"], 1)  # (B, T, W)
    controlled = model.controlled_residual(residual, out)
    assert controlled.shape == residual.shape
    segment_id = out.segment_masks.argmax(1)  # (B, T), hard masks: one segment per step
    own_codes = torch.gather(out.codes, 1, segment_id[..., None].expand(-1, -1, 8))  # (B, T, Z)
    u = model.decode(own_codes)  # (B, T, W, W)
    explicit = residual + torch.einsum("btij,btj->bti", u, residual)  # e + U e, (U e)_i = Σ_j U_ij e_j
    valid = batch["mask"]
    torch.testing.assert_close(controlled[valid], explicit[valid], atol=1e-4, rtol=1e-4)
    direct = model.apply_controller(residual, own_codes)  # the RL-time call
    torch.testing.assert_close(direct[valid], explicit[valid], atol=1e-4, rtol=1e-4)
    assert (controlled - residual)[valid].abs().mean() > 0.1 * residual[valid].abs().mean()  # U e is not negligible


# ------------------------------------------------------------------------------ internal RL rule
def rl_betas(model, n_steps):
    history, betas = torch.zeros(2, model.config.history_size), []
    residual, code = torch.zeros(2, model.width), torch.zeros(2, model.config.latent_dim)
    for _ in range(n_steps):
        betas.append(model.switch_probability(residual, history, code))
        history = model.history_step(residual, history)
    return torch.stack(betas, 1)  # (2, n_steps)


def test_rl_switching_rule_holds_each_code_for_a_fixed_number_of_steps():
    model, _ = make()
    model.inferred_segment_length.fill_(7.4)
    assert model.steps_per_code == 7
    assert torch.nonzero(rl_betas(model, 20)[0]).squeeze(1).tolist() == [0, 7, 14]
    fixed, _ = make(rl_steps_per_code=3)
    fixed.inferred_segment_length.fill_(7.4)
    assert torch.nonzero(rl_betas(fixed, 8)[1]).squeeze(1).tolist() == [0, 3, 6]
    every, _ = make(rl_steps_per_code=1)
    assert torch.all(rl_betas(every, 5) == 1.0)


# ------------------------------------------------------------------------------ training
def test_loss_decreases_on_a_small_batch(dataset):
    model, base = make()
    batch = episodes(dataset, 8)
    optimizer = torch.optim.AdamW([*model.parameters(), *base.parameters()], lr=1e-3, weight_decay=0.03)
    generator = torch.Generator().manual_seed(0)

    def loss(sample):
        out = model(batch["observations"], batch["actions"], batch["mask"], generator=generator, sample=sample)
        logits = base.forward_upper(model.controlled_residual(base.forward_lower(batch["observations"], 1), out), 1)
        return compile_loss(logits.action_logits, batch["actions"], batch["mask"], out, 0.1, 0.1)

    with torch.no_grad():
        before = loss(sample=False)
    for _ in range(40):
        optimizer.zero_grad()
        loss(sample=True)["loss"].backward()
        optimizer.step()
    with torch.no_grad():
        after = loss(sample=False)
    assert float(after["loss"]) < 0.7 * float(before["loss"])
    assert float(after["action_nll"]) < float(before["action_nll"])


def states_equal(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[key], b[key]) for key in a)


def test_training_resumes_exactly_and_is_deterministic(tmp_path, dataset, smoke_base_model_path):
    config = dataclasses.replace(COMPILE_PRESETS["smoke"], train_steps=8, log_every=4, checkpoint_every=4)
    straight = train_compile(smoke_base_model_path, dataset, config, tmp_path / "a", progress=False)
    again = train_compile(smoke_base_model_path, dataset, config, tmp_path / "c", progress=False)
    partial = train_compile(smoke_base_model_path, dataset, config, tmp_path / "b", stop_after=4, progress=False)
    assert partial.name == "latest.pt" and load_checkpoint(partial)["step"] == 4
    resumed = train_compile(smoke_base_model_path, dataset, config, tmp_path / "b", progress=False)
    (model_a, base_a), (model_b, base_b), (model_c, base_c) = map(load_compile, (straight, resumed, again))
    for model, base in ((model_b, base_b), (model_c, base_c)):  # resumed == uninterrupted == rerun
        assert states_equal(model_a.state_dict(), model.state_dict())
        assert states_equal(base_a.state_dict(), base.state_dict())
    # θ was trained jointly from the pretrained weights; the RL hold length was set from D*
    pretrained = load_base_model(smoke_base_model_path)
    assert not states_equal(pretrained.state_dict(), base_a.state_dict())
    assert 1.0 <= float(model_a.inferred_segment_length) <= dataset.episode_lengths.max()
    rows = (tmp_path / "b" / "metrics.csv").read_text().strip().splitlines()
    assert [row.split(",")[0] for row in rows[1:]] == ["4", "8"]
    finished = train_compile(smoke_base_model_path, dataset, config, tmp_path / "a", progress=False)
    assert finished == straight  # finished: no-op
    with pytest.raises(CheckpointError, match="different CompileTrainConfig"):
        train_compile(smoke_base_model_path, dataset, dataclasses.replace(config, seed=1), tmp_path / "a",
                      progress=False)
    other_dstar = generate_grid_dataset(dataset.n_episodes, 0.0, seed=99, progress=False)
    train_compile(smoke_base_model_path, dataset, config, tmp_path / "d", stop_after=4, progress=False)
    for name, file in (("a", "compile.pt"), ("d", "latest.pt")):  # finished, and stopped
        with pytest.raises(CheckpointError, match=f"{file}.*another dataset_sha256"):
            train_compile(smoke_base_model_path, other_dstar, config, tmp_path / name, progress=False)


def test_frozen_base_model_option_leaves_theta_bit_identical(tmp_path, dataset, smoke_base_model_path):
    config = dataclasses.replace(COMPILE_PRESETS["smoke"], train_steps=2, cotrain_base_model=False)
    _, base = load_compile(train_compile(smoke_base_model_path, dataset, config, tmp_path / "frozen", progress=False))
    assert states_equal(load_base_model(smoke_base_model_path).state_dict(), base.state_dict())
