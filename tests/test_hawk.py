"""Hawk (RG-LRU) SSM for the ant (SPEC A§3.3, B4, §9.2 item 14): recurrence, step = scan, control, loss, training."""

import dataclasses
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from agents.checkpoints import CheckpointError
from agents.models.base_models import base_model_config_from_dict, base_model_config_to_dict, build_base_model
from agents.models.controller import full_linear_control
from agents.models.hawk import (
    HAWK_PRESETS,
    MAX_SQRT_GRADIENT,
    SCAN_MIN_LOG_A,
    HawkConfig,
    HawkSSM,
    gaussian_sequence_loss,
    rg_lru_scan,
    sqrt_bound_derivative,
)
from agents.models.transformer import TRANSFORMER_PRESETS, CausalTransformer
from agents.pretrain import ANT_PRETRAIN_PRESETS, PRETRAIN_PRESETS, load_base_model, pretrain
from agents.training_utils import CsvLog
from hier_envs.datasets import generate_ant_dataset, generate_grid_dataset

SMOKE = HAWK_PRESETS["smoke"]


def make_model(seed=0, config=SMOKE):
    torch.manual_seed(seed)
    model = HawkSSM(config)
    model.eval()
    return model


def naive_scan(log_a, x, h0):
    h, states = h0.clone(), []
    for t in range(x.shape[1]):
        h = log_a[:, t].exp() * h + x[:, t]
        states.append(h)
    return torch.stack(states, 1)


# ------------------------------------------------------------------------ RG-LRU
def test_scan_equals_sequential_recurrence_across_chunks():
    generator = torch.Generator().manual_seed(0)
    log_a = -torch.rand(3, 77, 5, generator=generator) * 0.5  # 77 > 2 chunks, ragged last chunk
    x = torch.randn(3, 77, 5, generator=generator)
    h0 = torch.randn(3, 5, generator=generator)
    states, last = rg_lru_scan(log_a, x, h0)
    expected = naive_scan(log_a.double(), x.double(), h0.double()).float()
    torch.testing.assert_close(states, expected, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(last, expected[:, -1])
    assert states.dtype == torch.float32


def test_scan_is_finite_for_vanishing_decay():
    log_a = torch.full((1, 100, 2), -1e4)  # a = 0: h_t = x_t, no overflow of e^{-G}
    x = torch.randn(1, 100, 2)
    states, _ = rg_lru_scan(log_a, x)
    assert torch.isfinite(states).all()
    torch.testing.assert_close(states, x, atol=1e-6, rtol=0)
    assert SCAN_MIN_LOG_A * 32 > -709  # the chunk's cumulative decay stays in float64 range


def test_scan_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="log_a and inputs"):
        rg_lru_scan(torch.zeros(1, 4, 3), torch.zeros(1, 4, 2))


def test_recurrence_init_ring_and_gate_exponent():
    model = make_model(config=HawkConfig(width=16, lru_width=64, n_layers=1, n_heads=4, mlp_hidden=8))
    lru = model.blocks[0].temporal.rg_lru
    a = torch.exp(-F.softplus(lru.a_param))
    assert a.min() >= 0.9 - 1e-6 and a.max() <= 0.999 + 1e-6
    assert a.std() > 0.01  # spread over the ring, not one value
    # one step from a zero state at t > 0: h = √(1 - a_t²) ⊙ i ⊙ u with a_t = a^{c r}, c = 8
    u = torch.randn(2, 64)
    h = torch.zeros(2, 64)
    out = lru.step(u, h, first=torch.tensor([False, True]))
    r = torch.sigmoid(lru.recurrence_gate(u))
    i = torch.sigmoid(lru.input_gate(u))
    a_t = a ** (8.0 * r)
    torch.testing.assert_close(out[0], (torch.sqrt(1 - a_t**2) * i * u)[0], atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(out[1], (i * u)[1], atol=1e-6, rtol=1e-5)  # episode start: multiplier 1
    # the decay then applies: h2 = a_t h1 + ...
    h_before = h.clone()
    lru.step(torch.zeros(2, 64), h, first=torch.tensor([False, False]))
    a_zero = a ** (8.0 * torch.sigmoid(lru.recurrence_gate(torch.zeros(2, 64))))
    torch.testing.assert_close(h, a_zero * h_before, atol=1e-6, rtol=1e-5)


def test_bounded_sqrt_is_sqrt_forward_and_caps_its_derivative():
    """SPEC §9.2 item 14: √(1 - a²) as recurrentgemma's SqrtBoundDerivative: the forward is
    bit-identical to the plain expression, the gradient is autograd's wherever 1/(2√x) <= 1000
    and 1000 below that, where autograd's grows without bound (inf at x = 0)."""
    log_a = -torch.logspace(-9, math.log10(-SCAN_MIN_LOG_A), 400)  # a from 1 - 1e-9 down to e^-20
    x = -torch.expm1(2.0 * log_a)  # the RG-LRU's 1 - a², including values under the cap's 2.5e-7
    bounded_input, plain_input = x.clone().requires_grad_(), x.clone().requires_grad_()
    bounded, plain = sqrt_bound_derivative(bounded_input), torch.sqrt(plain_input)
    assert torch.equal(bounded, plain)
    weights = torch.randn(x.shape, generator=torch.Generator().manual_seed(0))
    (bounded * weights).sum().backward()
    (plain * weights).sum().backward()
    normal = 4.0 * x >= MAX_SQRT_GRADIENT**-2
    assert 0 < int(normal.sum()) < len(x)
    assert torch.equal(bounded_input.grad[normal], plain_input.grad[normal])
    torch.testing.assert_close(bounded_input.grad[~normal], MAX_SQRT_GRADIENT * weights[~normal])
    assert (plain_input.grad[~normal].abs() > MAX_SQRT_GRADIENT * weights[~normal].abs()).all()
    zero = torch.zeros(3, requires_grad=True)
    sqrt_bound_derivative(zero).sum().backward()
    torch.testing.assert_close(zero.grad, torch.full((3,), MAX_SQRT_GRADIENT))  # autograd's: inf


def test_rg_lru_gradients_stay_finite_when_the_recurrence_gate_underflows():
    """With r_t = σ(-120) = 0 in float32, a_t = 1 and 1 - a_t² = 0: the unbounded √ gave NaN
    gradients (its inf times the zero slope of the gates); the bounded one keeps them finite,
    and the forward pass equals the plain expression's."""
    model = make_model(config=HawkConfig(width=8, lru_width=8, n_layers=1, n_heads=2, mlp_hidden=8))
    lru = model.blocks[0].temporal.rg_lru
    u = torch.randn(2, 5, 8, generator=torch.Generator().manual_seed(0))
    for bias in (-5.0, -120.0):
        lru.zero_grad()
        with torch.no_grad():
            lru.recurrence_gate.bias.fill_(bias)
        first = torch.zeros(2, 5, dtype=torch.bool)
        first[:, 0] = True
        log_a, inputs = lru._gated(u, first)
        plain_multiplier = torch.where(first.unsqueeze(-1), 1.0, torch.sqrt(-torch.expm1(2.0 * log_a)))
        plain = plain_multiplier * (torch.sigmoid(lru.input_gate(u)) * u)
        assert torch.equal(inputs, plain)
        lru(u).sum().backward()
        for parameter in lru.parameters():
            assert torch.isfinite(parameter.grad).all()
        if bias == -120.0:
            assert (log_a == 0).all()  # the underflow really happened


@pytest.mark.parametrize("name", ["input_gate", "recurrence_gate"])
def test_gates_are_block_diagonal(name):
    """SPEC A§3.3 ("8 heads" = block-diagonal gate matrices) and §9.2 item 14: both RG-LRU gates
    map each head's block of the input to the same block of the output only."""
    model = make_model(config=HawkConfig(width=16, lru_width=16, n_layers=1, n_heads=4, mlp_hidden=8))
    gate = getattr(model.blocks[0].temporal.rg_lru, name)
    assert gate.weight.shape == (4, 4, 4)
    u = torch.randn(1, 16)
    v = u.clone()
    v[0, :4] += 1.0  # change head 0 only
    changed = (gate(u) - gate(v)).abs().squeeze(0) > 0
    assert changed[:4].all() and not changed[4:].any()


def test_defaults_are_recurrentgemmas_numerics():
    """SPEC §9.2 item 14 (and A§3.3 INFERRED): temporal conv width 4, c = 8, ring [0.9, 0.999],
    as the default config and in every preset."""
    for name, config in {"HawkConfig()": HawkConfig(), **HAWK_PRESETS}.items():
        numerics = (config.conv_width, config.gate_exponent, config.min_radius, config.max_radius)
        assert numerics == (4, 8.0, 0.9, 0.999), name


def test_temporal_conv_is_causal_with_width_four():
    """SPEC §9.2 item 14: the depthwise Conv1D before the RG-LRU sees exactly the last 4 inputs:
    changing u_5 changes the conv outputs at t = 5, 6, 7, 8 and no others."""
    block = make_model().blocks[0].temporal
    assert block.conv_weight.shape == (4, SMOKE.lru_width)
    u = torch.randn(1, 12, SMOKE.lru_width, generator=torch.Generator().manual_seed(0))
    v = u.clone()
    v[0, 5] += 1.0
    with torch.no_grad():
        changed = (block._conv(u) - block._conv(v)).abs().amax(-1).squeeze(0) > 0  # (T,)
    assert torch.nonzero(changed).squeeze(1).tolist() == [5, 6, 7, 8]


def test_ring_initialisation_spans_point_nine_to_point_nine_nine_nine():
    """SPEC §9.2 item 14 (recurrentgemma ``rnn_param_init``): a = exp(-softplus(Λ)) starts with
    a² uniform on [0.9², 0.999²] (uniform over the ring's area), so the a fill the whole ring.

    Over 65,536 channels the extremes lie within 0.001 of 0.9 and 0.999, and the Kolmogorov–Smirnov
    distance of a² from that uniform is under 1.63/√n ≈ 0.0064 (the 1% critical value; this seed
    gives 0.004). Drawing a itself uniformly (a ring of the wrong measure) gives about 0.015.
    """
    config = HawkConfig(width=16, lru_width=65536, n_layers=1, n_heads=2048, mlp_hidden=8)
    a = torch.exp(-F.softplus(make_model(config=config).blocks[0].temporal.rg_lru.a_param.detach().double()))
    assert 0.9 - 1e-6 <= float(a.min()) <= 0.901
    assert 0.998 <= float(a.max()) <= 0.999 + 1e-6
    quantiles = ((a**2 - 0.9**2) / (0.999**2 - 0.9**2)).sort().values  # U[0, 1] if a² is uniform
    n = len(quantiles)
    ecdf = torch.arange(1, n + 1, dtype=torch.float64) / n
    assert float((ecdf - quantiles).abs().max()) < 1.63 / math.sqrt(n)


def test_state_is_float32_for_a_double_model():
    model = make_model().double()
    state = model.init_state(2)
    assert all(h.dtype == torch.float32 for h in state.hidden)
    out = model.step(torch.randn(2, SMOKE.obs_dim, dtype=torch.float64), state)
    assert out.action_mean.dtype == torch.float64 and all(h.dtype == torch.float32 for h in state.hidden)


# ------------------------------------------------------------------------ step = scan
def test_step_equals_full_forward_with_independent_row_resets():
    model = make_model(config=dataclasses.replace(SMOKE, n_layers=3))
    model.set_observation_statistics(torch.randn(SMOKE.obs_dim) * 0.1, torch.rand(SMOKE.obs_dim) + 0.5)
    generator = torch.Generator().manual_seed(1)
    episodes = [torch.randn(length, SMOKE.obs_dim, generator=generator) for length in (40, 13, 25, 30)]
    reference = [model(ep.unsqueeze(0), return_residuals=True) for ep in episodes]
    # row 0 plays episode 0; row 1 plays episode 1 then episode 2 (reset at t = 13); row 2 episode 3
    rows = [[(0, 40)], [(1, 13), (2, 25)], [(3, 30)]]
    state = model.init_state(3)
    cursors = [0, 0, 0]
    position = [0, 0, 0]
    for _ in range(40):
        obs = torch.zeros(3, SMOKE.obs_dim)
        for row in range(3):
            if cursors[row] < len(rows[row]):
                obs[row] = episodes[rows[row][cursors[row]][0]][position[row]]
        residual = model.step_lower(obs, state, 1)
        out = model.step_upper(residual, state, 1)
        reset = torch.zeros(3, dtype=torch.bool)
        for row in range(3):
            if cursors[row] >= len(rows[row]):
                continue
            episode, length = rows[row][cursors[row]]
            t = position[row]
            torch.testing.assert_close(residual[row], reference[episode].residuals[1][0, t], atol=1e-5, rtol=1e-5)
            torch.testing.assert_close(out.action_mean[row], reference[episode].action_mean[0, t], atol=1e-5, rtol=1e-5)
            torch.testing.assert_close(out.action_log_std[row], reference[episode].action_log_std[0, t], atol=1e-5, rtol=1e-5)
            torch.testing.assert_close(out.next_obs_mean[row], reference[episode].next_obs_mean[0, t], atol=1e-5, rtol=1e-5)
            position[row] += 1
            if position[row] == length:
                cursors[row], position[row] = cursors[row] + 1, 0
                reset[row] = True
        state.reset_rows(reset)


def test_controlled_step_equals_controlled_forward_and_spares_lower_layers():
    model = make_model(seed=3, config=dataclasses.replace(SMOKE, n_layers=4))
    layer = model.config.controlled_layer
    assert layer == 2
    u = torch.randn(SMOKE.width, SMOKE.width) * 0.3
    controller = lambda e: full_linear_control(e, u)  # noqa: E731
    obs = torch.randn(2, 20, SMOKE.obs_dim)
    plain = model(obs, return_residuals=True)
    controlled = model(obs, controller=controller, return_residuals=True)
    for depth in range(layer + 1):  # at and below the controlled layer the recorded residual is unchanged
        torch.testing.assert_close(controlled.residuals[depth], plain.residuals[depth])
    assert not torch.allclose(controlled.action_mean, plain.action_mean)
    split = model.forward_upper(controller(model.forward_lower(obs, layer)), layer)
    torch.testing.assert_close(split.action_mean, controlled.action_mean, atol=1e-6, rtol=1e-6)
    state = model.init_state(2)
    steps = [model.step(obs[:, t], state, controller=controller).action_mean for t in range(20)]
    torch.testing.assert_close(torch.stack(steps, 1), controlled.action_mean, atol=1e-5, rtol=1e-5)


def test_causal():
    model = make_model()
    obs = torch.randn(1, 30, SMOKE.obs_dim)
    changed = obs.clone()
    changed[0, 20:] += 5.0
    a, b = model(obs), model(changed)
    torch.testing.assert_close(a.action_mean[:, :20], b.action_mean[:, :20])
    assert not torch.allclose(a.action_mean[:, 20:], b.action_mean[:, 20:])


# ------------------------------------------------------------------------ bad input
def test_bad_configs_and_inputs_raise():
    with pytest.raises(ValueError, match="not divisible by n_heads"):
        HawkConfig(lru_width=30, n_heads=8)
    with pytest.raises(ValueError, match="min_radius"):
        HawkConfig(min_radius=0.99, max_radius=0.9)
    with pytest.raises(ValueError, match="HawkConfig.width"):
        HawkConfig(width=0)
    for field, value in (("min_radius", "x"), ("max_radius", None), ("gate_exponent", "8"), ("gate_exponent", True)):
        with pytest.raises(TypeError, match=rf"HawkConfig\.{field} must be a real number, got .*{value!r}"):
            HawkConfig(**{field: value})  # a str failed inside a comparison, True passed as c = 1
    with pytest.raises(TypeError, match="HawkConfig"):
        HawkSSM(TRANSFORMER_PRESETS["smoke"])
    model = make_model()
    with pytest.raises(ValueError, match="D=41"):
        model(torch.zeros(1, 5, 40))
    with pytest.raises(TypeError, match="float"):
        model(torch.zeros(1, 5, 41, dtype=torch.long))
    with pytest.raises(ValueError, match="out of range"):
        model(torch.zeros(1, 5, 41), controlled_layer=9)
    state = model.init_state(2)
    with pytest.raises(RuntimeError, match="needs a preceding step_lower"):
        model.step_upper(torch.zeros(2, SMOKE.width), state, 1)
    model.step_lower(torch.zeros(2, 41), state, 1)
    with pytest.raises(RuntimeError, match="finish the step"):
        state.reset_rows(torch.ones(2, dtype=torch.bool))
    with pytest.raises(ValueError, match="bool mask"):
        model.init_state(2).reset_rows(torch.ones(3, dtype=torch.bool))
    with pytest.raises(ValueError, match="scale"):
        model.set_observation_statistics(torch.zeros(41), torch.zeros(41))


# ------------------------------------------------------------------------ loss
def test_gaussian_loss_matches_torch_distributions_and_masks():
    model = make_model()
    obs = torch.randn(2, 6, 41)
    output = model(obs)
    actions = torch.randn(2, 6, 8)
    next_obs = torch.randn(2, 6, 41)
    mask = torch.tensor([[True] * 6, [True] * 3 + [False] * 3])
    losses = gaussian_sequence_loss(output, actions, next_obs, mask, 10.0)
    normal = torch.distributions.Normal(output.action_mean, output.action_log_std.exp())
    expected = -normal.log_prob(actions).sum(-1)[mask].mean()
    torch.testing.assert_close(losses["action_nll"], expected)
    obs_normal = torch.distributions.Normal(output.next_obs_mean, output.next_obs_log_std.exp())
    torch.testing.assert_close(losses["loss"], expected - 10.0 * obs_normal.log_prob(next_obs).sum(-1)[mask].mean())
    poisoned = actions.clone()
    poisoned[1, 4] = 1e6  # padding never counts
    torch.testing.assert_close(gaussian_sequence_loss(output, poisoned, next_obs, mask, 10.0)["action_nll"], expected)
    with pytest.raises(TypeError, match="float tensor"):
        gaussian_sequence_loss(output, actions.long(), next_obs, mask, 10.0)
    with pytest.raises(ValueError, match="no timesteps"):
        gaussian_sequence_loss(output, actions, next_obs, torch.zeros_like(mask), 10.0)


def test_log_std_starts_at_zero_and_stays_bounded():
    model = make_model()
    with torch.no_grad():
        model.action_head.weight.zero_()  # a zero head output means log σ = 0 (unit variance)
    output = model(torch.randn(1, 4, 41))
    torch.testing.assert_close(output.action_log_std, torch.zeros_like(output.action_log_std), atol=1e-6, rtol=0)
    with torch.no_grad():
        model.action_head.bias.fill_(1e4)
    assert model(torch.randn(1, 4, 41)).action_log_std.max() <= 2.0


# ------------------------------------------------------------------------ configs and training
def test_config_dict_round_trip_and_legacy_transformer_dicts():
    for config in (SMOKE, TRANSFORMER_PRESETS["smoke"]):
        assert base_model_config_from_dict(base_model_config_to_dict(config)) == config
    assert base_model_config_from_dict(TRANSFORMER_PRESETS["smoke"].to_dict()) == TRANSFORMER_PRESETS["smoke"]
    with pytest.raises(ValueError, match="unknown model_type"):
        base_model_config_from_dict({"model_type": "lstm"})
    assert isinstance(build_base_model(SMOKE), HawkSSM)
    assert isinstance(build_base_model(TRANSFORMER_PRESETS["smoke"]), CausalTransformer)
    assert HAWK_PRESETS["paper"] == HawkConfig(width=256, lru_width=256, n_layers=8, n_heads=8, mlp_hidden=512)
    assert ANT_PRETRAIN_PRESETS["paper"].obs_loss_weight == 10.0
    # default: the paper's λ = 10 per observation dimension, on the summed NLL (agents/pretrain.py)
    assert ANT_PRETRAIN_PRESETS["default"].obs_loss_weight == 10.0 / 41 == 0.24390243902439024


@pytest.fixture(scope="module")
def ant_dataset():
    return generate_ant_dataset(3, True, seed=0, only_success=False, progress=False)


ANT_SMOKE = dataclasses.replace(ANT_PRETRAIN_PRESETS["smoke"], train_steps=20, eval_every=10, checkpoint_every=10,
                                snapshot_steps=(10,), batch_size=2, val_fraction=0.34)


def test_ant_pretraining_resumes_to_identical_weights(ant_dataset, tmp_path):
    straight = pretrain(ANT_SMOKE, ant_dataset, tmp_path / "straight", progress=False)
    pretrain(ANT_SMOKE, ant_dataset, tmp_path / "resumed", stop_after=10, progress=False)
    resumed = pretrain(ANT_SMOKE, ant_dataset, tmp_path / "resumed", progress=False)
    a, b = load_base_model(straight), load_base_model(resumed)
    assert isinstance(a, HawkSSM) and a.config == ANT_SMOKE.model
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    assert not torch.equal(a.obs_scale, torch.ones_like(a.obs_scale))  # fitted on the training split
    rows = CsvLog(tmp_path / "resumed" / "metrics.csv", ["step"]).read()
    assert [row["step"] for row in rows] == ["10", "20"] and "val_action_mse" in rows[0]
    assert all(math.isfinite(float(row["val_action_nll"])) for row in rows)


def test_ant_pretraining_under_bfloat16_stays_finite_and_float32(ant_dataset, tmp_path):
    """The Hawk SSM's scan also runs under ``precision="bfloat16"``: finite losses, float32 weights."""
    config = dataclasses.replace(ANT_SMOKE, precision="bfloat16")
    model = load_base_model(pretrain(config, ant_dataset, tmp_path / "run", progress=False))
    assert {tensor.dtype for tensor in model.state_dict().values() if tensor.is_floating_point()} == {torch.float32}
    rows = CsvLog(tmp_path / "run" / "metrics.csv", ["step"]).read()
    assert all(math.isfinite(float(row[key])) for row in rows for key in ("train_loss", "val_action_nll"))


def test_dataset_of_the_other_environment_is_refused(ant_dataset, tmp_path):
    with pytest.raises(ValueError, match="does not fit HawkConfig"):
        pretrain(ANT_SMOKE, generate_grid_dataset(4, 0.0, seed=0, progress=False), tmp_path / "a", progress=False)
    with pytest.raises(ValueError, match="does not fit TransformerConfig"):
        pretrain(PRETRAIN_PRESETS["smoke"], ant_dataset, tmp_path / "b", progress=False)


def test_checkpoint_with_mismatched_shapes_names_the_file(ant_dataset, tmp_path):
    path = pretrain(ANT_SMOKE, ant_dataset, tmp_path / "run", progress=False)
    record = torch.load(path, weights_only=False)
    record["config"]["model"]["width"] = 48
    bad = tmp_path / "wrong_width.pt"
    from agents.checkpoints import save_checkpoint

    save_checkpoint(bad, record)
    with pytest.raises(CheckpointError, match="wrong_width.pt"):
        load_base_model(bad)
    assert np.isfinite(float(load_base_model(path).obs_mean.sum()))


def test_per_step_action_nll_averages_to_the_pretraining_loss_for_both_families():
    mask = torch.tensor([[True] * 5, [True] * 2 + [False] * 3])
    hawk = make_model()
    output = hawk(torch.randn(2, 5, 41))
    actions = torch.randn(2, 5, 8)
    per_step = hawk.action_nll_per_step(output, actions)
    expected = gaussian_sequence_loss(output, actions, torch.zeros(2, 5, 41), mask, 0.0)["action_nll"]
    torch.testing.assert_close(per_step[mask].mean(), expected)
    torch.manual_seed(0)
    transformer = CausalTransformer(TRANSFORMER_PRESETS["smoke"])
    grid_output = transformer(torch.rand(2, 5, 637).round())
    grid_actions = torch.randint(0, 4, (2, 5))
    batch = {"actions": grid_actions, "next_observations": torch.zeros(2, 5, 637), "mask": mask}
    torch.testing.assert_close(transformer.action_nll_per_step(grid_output, grid_actions)[mask].mean(),
                               transformer.loss(grid_output, batch, 0.0)["action_nll"])
