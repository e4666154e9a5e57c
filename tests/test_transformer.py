"""Grid causal transformer, KV cache, controllers and loss (SPEC A§3, A§5.1, §9.2 items 1/7/9/11, B4)."""

import math

import pytest
import torch
import torch.nn.functional as F

from agents.models import (
    TRANSFORMER_PRESETS,
    CausalTransformer,
    TransformerConfig,
    freeze,
    full_linear_control,
    low_rank_control,
    sequence_loss,
)
from agents.models.transformer import relative_position_bucket, variance_scaling_

CONFIG = TransformerConfig(obs_dim=37, n_actions=4, width=32, n_layers=4, n_heads=4, mlp_hidden=48)
RANK = 3


def make_model(seed: int = 0, config: TransformerConfig = CONFIG) -> CausalTransformer:
    """A model with large random weights, so that every block and the position bias matter."""
    torch.manual_seed(seed)
    model = CausalTransformer(config).eval()
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.normal_(0.0, 0.3)
    return model


def random_observations(batch: int, length: int, seed: int = 1, obs_dim: int = CONFIG.obs_dim) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return (torch.rand(batch, length, obs_dim, generator=generator) < 0.2).float()


def random_low_rank(batch: int, length: int, seed: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    a = 0.3 * torch.randn(batch, length, CONFIG.width, RANK, generator=generator)
    b = 0.3 * torch.randn(batch, length, CONFIG.width, RANK, generator=generator)
    return a, b


# ---------------------------------------------------------------------------------------------
# Config, presets, initialisation
# ---------------------------------------------------------------------------------------------


def test_presets_and_config():
    paper = TRANSFORMER_PRESETS["paper"]
    assert (paper.n_layers, paper.width, paper.n_heads, paper.head_dim, paper.mlp_hidden) == (6, 256, 4, 64, 512)
    assert paper.n_position_buckets == 32 and paper.obs_dim == 637 and paper.n_actions == 4
    assert paper.controlled_layer == 3
    assert TRANSFORMER_PRESETS["default"].n_layers == 6
    assert TRANSFORMER_PRESETS["smoke"].controlled_layer == 1
    assert TransformerConfig.from_dict(paper.to_dict()) == paper
    with pytest.raises(ValueError, match="30"):
        TransformerConfig(width=30, n_heads=4)
    with pytest.raises(ValueError, match="bogus"):
        TransformerConfig.from_dict({"bogus": 1})
    for dropout in ("x", None, True):  # a str used to fail inside the range comparison, naming nothing
        with pytest.raises(TypeError, match=rf"TransformerConfig\.dropout must be a real number, got .*{dropout!r}"):
            TransformerConfig(dropout=dropout)


def test_variance_scaling_initialiser():
    torch.manual_seed(0)
    weight = torch.empty(400, 900)
    variance_scaling_(weight, 0.1)
    target = math.sqrt(0.1 / 900)
    assert abs(weight.std().item() / target - 1) < 0.02
    assert weight.abs().max().item() <= 2 * target / 0.8796 + 1e-7  # truncated at two sigma'
    model = CausalTransformer(TRANSFORMER_PRESETS["smoke"])
    assert abs(model.next_obs_head.weight.std().item() / math.sqrt(0.1 / 32) - 1) < 0.05
    assert torch.count_nonzero(model.blocks[0].attn.qkv.bias) == 0
    assert torch.count_nonzero(model.embed.linear.bias) == 0  # the smoke preset embeds egocentrically
    n_features = model.embed.linear.in_features
    assert abs(model.embed.linear.weight.std().item() / math.sqrt(0.1 / n_features) - 1) < 0.05


def test_relative_position_buckets_t5_causal():
    distance = torch.arange(0, 400)
    buckets = relative_position_bucket(distance, 32, 128)
    assert torch.equal(buckets[:16], torch.arange(16))  # exact buckets
    assert buckets[16].item() == 16
    assert buckets[127].item() == 31 and buckets[128].item() == 31 and buckets[399].item() == 31
    assert buckets[31].item() == 16 + int(math.log(31 / 16) / math.log(8) * 16)  # log-spaced
    assert torch.all(buckets[1:] >= buckets[:-1])
    assert relative_position_bucket(torch.tensor([-5]), 32, 128).item() == 0


# ---------------------------------------------------------------------------------------------
# Full forward: shapes, causality, residual-stream read/write
# ---------------------------------------------------------------------------------------------


def test_forward_shapes_and_causality():
    model = make_model()
    observations = random_observations(2, 12)
    output = model(observations, return_residuals=True)
    assert output.action_logits.shape == (2, 12, 4)
    assert output.next_obs_logits.shape == (2, 12, CONFIG.obs_dim)
    assert len(output.residuals) == CONFIG.n_layers + 1
    assert all(r.shape == (2, 12, CONFIG.width) for r in output.residuals)
    assert torch.allclose(output.residuals[0], model.embed(observations))

    changed = observations.clone()
    changed[:, 7] = 1.0 - changed[:, 7]
    other = model(changed)
    assert torch.allclose(other.action_logits[:, :7], output.action_logits[:, :7], atol=1e-6)
    assert (other.action_logits[:, 7:] - output.action_logits[:, 7:]).abs().max() > 1e-2


def test_controller_writes_only_above_its_layer():
    model = make_model()
    observations = random_observations(2, 10)
    plain = model(observations, return_residuals=True)
    layer = 1  # not the default L // 2 = 2, checked below
    shift = torch.randn(CONFIG.width)
    seen = {}

    def controller(residual):
        seen["residual"] = residual
        return residual + shift

    controlled = model(observations, controller=controller, controlled_layer=layer, return_residuals=True)
    assert seen["residual"].shape == (2, 10, CONFIG.width)
    assert torch.allclose(seen["residual"], plain.residuals[layer])
    for depth in range(layer + 1):  # lower layers and the controlled layer itself: uncontrolled
        assert torch.allclose(controlled.residuals[depth], plain.residuals[depth])
    assert (controlled.residuals[layer + 1] - plain.residuals[layer + 1]).abs().max() > 1e-2
    assert (controlled.action_logits - plain.action_logits).abs().max() > 1e-2

    # split forward agrees with the controlled forward
    lower = model.forward_lower(observations, layer)
    upper = model.forward_upper(lower + shift, layer)
    assert torch.allclose(upper.action_logits, controlled.action_logits, atol=1e-6)
    # default controlled layer is L // 2
    default = model(observations, controller=controller)
    assert torch.allclose(seen["residual"], plain.residuals[CONFIG.n_layers // 2])
    assert not torch.allclose(default.action_logits, controlled.action_logits)


def test_bad_arguments_raise():
    model = make_model()
    observations = random_observations(1, 4)
    with pytest.raises(ValueError, match="controlled_layer=7"):
        model(observations, controller=lambda e: e, controlled_layer=7)
    with pytest.raises(ValueError, match="controlled_layer=-1"):
        model(observations, controller=lambda e: e, controlled_layer=-1)
    with pytest.raises(ValueError, match="shape"):
        model(observations[..., :-1])
    with pytest.raises(ValueError, match="controller must return"):
        model(observations, controller=lambda e: e[..., :-1])
    with pytest.raises(TypeError):
        CausalTransformer({"width": 32})


# ---------------------------------------------------------------------------------------------
# Incremental inference (SPEC B4, §9.2 item 9)
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("use_controller", "layer"), [(False, 2), (True, 2), (True, 0), (True, CONFIG.n_layers)])
def test_cached_steps_match_full_forward(use_controller, layer):
    """SPEC B4, §9.2 item 9: per-step low-rank controllers, cached steps == full pass (1e-5)."""
    model = make_model()
    batch, length = 3, 40
    observations = random_observations(batch, length)
    a, b = random_low_rank(batch, length)

    def full_controller(residual):  # (B, T, W), one low-rank controller per timestep
        return low_rank_control(residual, a, b)

    full = model(
        observations, controller=full_controller if use_controller else None, controlled_layer=layer, return_residuals=True
    )
    cache = model.init_cache(batch, max_len=length)
    for t in range(length):
        residual = model.step_lower(observations[:, t], cache, layer)
        assert torch.allclose(residual, full.residuals[layer][:, t], atol=1e-5)
        if use_controller:
            residual = low_rank_control(residual, a[:, t], b[:, t])
        step = model.step_upper(residual, cache, layer)
        torch.testing.assert_close(step.action_logits, full.action_logits[:, t], atol=1e-5, rtol=0)
        torch.testing.assert_close(step.next_obs_logits, full.next_obs_logits[:, t], atol=1e-5, rtol=0)
    assert torch.equal(cache.lengths, torch.full((batch,), length))
    assert full.action_logits.std() > 0.1  # the comparison is not between constants


def test_upper_cache_holds_controlled_past():
    """Controlling only step 0 must change later steps through the upper caches."""
    model = make_model()
    observations = random_observations(1, 6)
    # random, because a constant shift would be undone by the next LayerNorm
    shift = torch.randn(CONFIG.width, generator=torch.Generator().manual_seed(7))

    def controller_at_first_step(residual):  # (B, T, W)
        out = residual.clone()
        out[:, 0] += shift
        return out

    full = model(observations, controller=controller_at_first_step)
    plain = model(observations)
    cache = model.init_cache(1, 6)
    logits = []
    for t in range(6):
        step = model.step(observations[:, t], cache, controller=(lambda e: e + shift) if t == 0 else None)
        logits.append(step.action_logits)
    cached = torch.stack(logits, 1)
    torch.testing.assert_close(cached, full.action_logits, atol=1e-5, rtol=0)
    assert (cached[:, 1:] - plain.action_logits[:, 1:]).abs().max() > 1e-3


def test_reset_rows_starts_a_fresh_episode():
    model = make_model()
    first = random_observations(3, 10, seed=3)
    second = random_observations(3, 15, seed=4)
    cache = model.init_cache(3, max_len=30)
    for t in range(10):
        model.step(first[:, t], cache)
    cache.reset_rows(torch.tensor([False, True, False]))
    assert cache.lengths.tolist() == [10, 0, 10]
    logits = torch.stack([model.step(second[:, t], cache).action_logits for t in range(15)], 1)  # (3, 15, A)
    fresh = model(second[1:2]).action_logits  # row 1 as a new sequence
    torch.testing.assert_close(logits[1:2], fresh, atol=1e-5, rtol=0)
    continued = model(torch.cat([first, second], 1)).action_logits[:, 10:]  # rows 0, 2 continue
    torch.testing.assert_close(logits[[0, 2]], continued[[0, 2]], atol=1e-5, rtol=0)
    assert (logits[0] - model(second[0:1]).action_logits[0]).abs().max() > 1e-3


def test_cache_misuse_raises():
    model = make_model()
    observations = random_observations(2, 3)
    cache = model.init_cache(2, max_len=2)
    with pytest.raises(RuntimeError, match="step_lower"):
        model.step_upper(torch.zeros(2, CONFIG.width), cache, 2)
    residual = model.step_lower(observations[:, 0], cache, 2)
    with pytest.raises(RuntimeError, match="pending"):
        model.step_lower(observations[:, 0], cache, 2)
    with pytest.raises(RuntimeError):
        model.step_upper(residual, cache, 1)
    model.step_upper(residual, cache, 2)
    model.step(observations[:, 1], cache)
    with pytest.raises(ValueError, match="max_len=2"):
        model.step(observations[:, 2], cache)
    with pytest.raises(ValueError, match="upto_layer=9"):
        model.step_lower(observations[:, 0], model.init_cache(2, 4), 9)
    with pytest.raises(ValueError, match="bool mask"):
        cache.reset_rows(torch.tensor([1, 0]))


# ---------------------------------------------------------------------------------------------
# Controllers and freezing (SPEC §9.2 items 1, 7)
# ---------------------------------------------------------------------------------------------


def test_low_rank_control_is_the_matrix_vector_product():
    generator = torch.Generator().manual_seed(5)
    e = torch.randn(2, 5, 8, generator=generator)
    a = torch.randn(2, 5, 8, 3, generator=generator)
    b = torch.randn(2, 5, 8, 3, generator=generator)
    u = a @ b.transpose(-1, -2)  # (2, 5, 8, 8) explicit U = A Bᵀ
    expected = e + torch.einsum("btij,btj->bti", u, e)
    torch.testing.assert_close(low_rank_control(e, a, b), expected)
    wrong = e + e * u.sum(-1)  # per-dimension gain e ⊙ rowsum(U), the known porting bug
    assert (low_rank_control(e, a, b) - wrong).abs().max() > 1e-1
    torch.testing.assert_close(full_linear_control(e, u), expected)
    # a single (W, r) controller broadcasts over batch and time
    torch.testing.assert_close(low_rank_control(e, a[0, 0], b[0, 0]), e + e @ u[0, 0].T)
    with pytest.raises(ValueError, match="rank"):
        low_rank_control(e, a, b[..., :2])
    with pytest.raises(ValueError, match="width"):
        low_rank_control(e, a[..., :7, :], b)


def test_controller_hypernetwork_refuses_an_unknown_controller_kind():
    """Any name but "low_rank" used to build a full W × W decoder silently (e.g. a misspelt "lowrank")."""
    from agents.models.controller import ControllerHypernetwork

    assert ControllerHypernetwork(8, 32, 16, "low_rank", 4, 0.1).decode(torch.zeros(2, 8))[0].shape == (2, 16, 4)
    assert ControllerHypernetwork(8, 32, 16, "linear", 4, 0.1).decode(torch.zeros(2, 8)).shape == (2, 16, 16)
    for kind in ("lowrank", "full", None):
        with pytest.raises(ValueError, match=rf"controller must be one of \('low_rank', 'linear'\), got {kind!r}"):
            ControllerHypernetwork(8, 32, 16, kind, 4, 0.1)


def test_freeze_and_gradient_through_frozen_model():
    model = make_model()
    model.train()
    frozen = freeze(model)
    assert frozen is model and not model.training
    assert all(not p.requires_grad for p in model.parameters())
    before = {k: v.clone() for k, v in model.state_dict().items()}
    a = torch.nn.Parameter(0.1 * torch.randn(CONFIG.width, RANK))
    b = torch.nn.Parameter(0.1 * torch.randn(CONFIG.width, RANK))
    optimizer = torch.optim.AdamW([a, b], lr=1e-2)
    observations = random_observations(2, 5)
    output = model(observations, controller=lambda e: low_rank_control(e, a, b))
    output.action_logits[..., 0].sum().backward()
    assert a.grad is not None and a.grad.abs().sum() > 0
    assert all(p.grad is None for p in model.parameters())
    optimizer.step()
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


# ---------------------------------------------------------------------------------------------
# Loss (SPEC A§3.1)
# ---------------------------------------------------------------------------------------------


def test_sequence_loss_values_and_mask():
    model = make_model()
    observations = random_observations(2, 6)
    next_observations = random_observations(2, 6, seed=9)
    actions = torch.tensor([[0, 1, 2, 3, 0, 1], [3, 3, 2, 1, 0, 0]])
    mask = torch.tensor([[True] * 6, [True] * 4 + [False] * 2])
    output = model(observations)
    losses = sequence_loss(output, actions, next_observations, mask, obs_loss_weight=0.01)

    valid = mask.nonzero(as_tuple=True)
    log_probs = output.action_logits.log_softmax(-1)[valid]  # (10, A)
    action_nll = -log_probs.gather(1, actions[valid][:, None]).mean()
    probabilities = torch.sigmoid(output.next_obs_logits[valid])  # (10, D)
    targets = next_observations[valid]
    obs_nll = -(targets * probabilities.log() + (1 - targets) * (1 - probabilities).log()).sum(-1).mean()
    accuracy = (output.action_logits.argmax(-1)[valid] == actions[valid]).float().mean()
    torch.testing.assert_close(losses["action_nll"], action_nll, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(losses["obs_nll"], obs_nll, rtol=1e-5, atol=1e-4)
    torch.testing.assert_close(losses["action_accuracy"], accuracy)
    torch.testing.assert_close(losses["loss"], action_nll + 0.01 * obs_nll, rtol=1e-5, atol=1e-5)

    # masked timesteps do not matter
    changed = type(output)(output.action_logits.clone(), output.next_obs_logits.clone())
    changed.action_logits[1, 4:] += 100.0
    changed.next_obs_logits[1, 4:] -= 100.0
    again = sequence_loss(changed, actions, next_observations, mask, obs_loss_weight=0.01)
    torch.testing.assert_close(again["loss"], losses["loss"])

    # a confident correct prediction gives near-zero NLL and accuracy 1
    perfect = type(output)(100.0 * F.one_hot(actions, 4).float(), 100.0 * (2 * next_observations - 1))
    best = sequence_loss(perfect, actions, next_observations, mask, obs_loss_weight=1.0)
    assert best["loss"].item() < 1e-6 and best["action_accuracy"].item() == 1.0

    with pytest.raises(TypeError):
        sequence_loss(output, actions.float(), next_observations, mask, 0.0)
    with pytest.raises(ValueError, match="no timesteps"):
        sequence_loss(output, actions, next_observations, torch.zeros_like(mask), 0.0)


def test_pretraining_steps_reduce_loss():
    """A few AdamW steps on a fixed batch lower the loss (gradients reach every part)."""
    torch.manual_seed(0)
    model = CausalTransformer(TRANSFORMER_PRESETS["smoke"])
    observations = random_observations(4, 8, obs_dim=637)
    next_observations = torch.roll(observations, -1, dims=1)
    actions = torch.randint(0, 4, (4, 8), generator=torch.Generator().manual_seed(0))
    mask = torch.ones(4, 8, dtype=torch.bool)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.03)
    first = None
    for _ in range(30):
        losses = sequence_loss(model(observations), actions, next_observations, mask, obs_loss_weight=0.01)
        optimizer.zero_grad()
        losses["loss"].backward()
        if first is None:
            first = losses["loss"].item()
            assert model.relative_bias.table.grad.abs().sum() > 0
            assert all(p.grad is not None for p in model.parameters())
        optimizer.step()
    assert losses["loss"].item() < 0.7 * first
