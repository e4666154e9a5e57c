"""The frozen lower half computed once per dataset (agents/lower_residuals.py)."""

import dataclasses

import numpy as np
import pytest
import torch

import agents.lower_residuals as lower_residuals_module
from agents.lower_residuals import LowerResiduals
from agents.models.controller import freeze
from agents.models.transformer import TRANSFORMER_PRESETS, CausalTransformer
from agents.pretrain import batch_tensors
from agents.train_metacontroller import METACONTROLLER_PRESETS, load_metacontroller, train_metacontroller
from hier_envs.datasets import generate_grid_dataset


@pytest.fixture(scope="module")
def frozen_model_and_dataset():
    torch.manual_seed(0)
    return freeze(CausalTransformer(TRANSFORMER_PRESETS["smoke"])), generate_grid_dataset(30, 0.2, seed=3, progress=False)


def test_cached_batches_equal_the_batched_forward_pass(frozen_model_and_dataset):
    model, dataset = frozen_model_and_dataset
    layer = model.config.controlled_layer
    residuals = LowerResiduals(model, dataset, layer, chunk_steps=7 * int(dataset.episode_lengths.max()))  # 7 per pass
    assert residuals.cached
    indices = np.array([5, 0, 29, 5, 17, 3])  # mixed lengths, a repeat
    batch = batch_tensors(dataset, indices)
    with torch.no_grad():
        expected = model.forward_lower(batch["observations"], layer)
    got = residuals(indices, batch)
    mask = batch["mask"]
    assert got.shape == expected.shape
    torch.testing.assert_close(got[mask], expected[mask], atol=1e-5, rtol=1e-5)
    assert not got[~mask].any()  # padded steps read the zero row
    assert not got[mask].abs().sum(-1).eq(0).any()


def test_over_the_memory_bound_it_computes_each_batch(frozen_model_and_dataset):
    model, dataset = frozen_model_and_dataset
    residuals = LowerResiduals(model, dataset, 1, max_bytes=0)
    assert not residuals.cached
    indices = np.array([1, 2])
    batch = batch_tensors(dataset, indices)
    with torch.no_grad():
        assert torch.equal(residuals(indices, batch), model.forward_lower(batch["observations"], 1))


def test_bad_inputs_raise(frozen_model_and_dataset):
    model, dataset = frozen_model_and_dataset
    with pytest.raises(ValueError, match="frozen"):
        LowerResiduals(CausalTransformer(TRANSFORMER_PRESETS["smoke"]), dataset, 1)
    untrained_but_training = CausalTransformer(TRANSFORMER_PRESETS["smoke"]).requires_grad_(False).train()
    with pytest.raises(ValueError, match="training mode"):  # dropout would be baked into the table
        LowerResiduals(untrained_but_training, dataset, 1)
    with pytest.raises(ValueError, match="chunk_steps"):
        LowerResiduals(model, dataset, 1, chunk_steps=0)
    with pytest.raises(ValueError, match="max_bytes"):
        LowerResiduals(model, dataset, 1, max_bytes=-1)
    residuals = LowerResiduals(model, dataset, 1)
    with pytest.raises(ValueError, match="3 indices"):
        residuals(np.array([0, 1, 2]), batch_tensors(dataset, np.array([0, 1])))


def test_metacontroller_training_matches_the_uncached_one(tmp_path, monkeypatch):
    """The trainer must gather the rows of the episodes it sampled: a wrong index would train on
    other episodes' residuals and end far from the uncached run."""
    torch.manual_seed(0)
    base = CausalTransformer(TRANSFORMER_PRESETS["smoke"])
    dataset = generate_grid_dataset(40, 0.0, seed=0, progress=False)
    config = dataclasses.replace(METACONTROLLER_PRESETS["smoke"], train_steps=10, log_every=5, checkpoint_every=5)
    cached = load_metacontroller(train_metacontroller(config, base, dataset, tmp_path / "a", progress=False), 32)
    monkeypatch.setattr(lower_residuals_module, "DEFAULT_MAX_BYTES", 0)
    uncached = load_metacontroller(train_metacontroller(config, base, dataset, tmp_path / "b", progress=False), 32)
    for name, value in cached.state_dict().items():
        torch.testing.assert_close(value, uncached.state_dict()[name], atol=1e-4, rtol=1e-4, msg=name)
