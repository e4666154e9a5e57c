"""Egocentric input embedding of the grid observation (agents/models/grid_encoding.py, SPEC B4)."""

import gymnasium as gym
import numpy as np
import pytest
import torch

import hier_envs  # noqa: F401  (registers the ids)
from agents.models import CausalTransformer, TransformerConfig
from agents.models.grid_encoding import EgocentricGridEmbedding, egocentric_index_table

G = 7
WINDOW = 2 * G - 1


def env_observations(n_steps: int, seed: int) -> np.ndarray:
    env = gym.make("HierGrid-Pretrain-v0")
    observations = []
    obs, _ = env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    for _ in range(n_steps):
        observations.append(obs)
        obs, _, terminated, truncated, _ = env.step(int(rng.integers(4)))
        if terminated or truncated:
            obs, _ = env.reset()
    return np.stack(observations)


def test_index_table_centre_and_off_grid():
    table = egocentric_index_table(G)
    assert table.shape == (G * G, WINDOW * WINDOW)
    centre = (G - 1) * WINDOW + (G - 1)
    assert torch.equal(table[:, centre], torch.arange(G * G))  # offset (0, 0) is the agent's own cell
    # agent in the top-left corner: the cell above-left is off the grid, the cell below-right is 8
    assert table[0, centre - WINDOW - 1] == G * G
    assert table[0, centre + WINDOW + 1] == G + 1
    # every grid cell appears exactly once in each agent's window
    for agent in range(G * G):
        seen = table[agent][table[agent] < G * G]
        assert sorted(seen.tolist()) == list(range(G * G))


def test_features_are_a_lossless_reindexing_of_real_observations():
    """Each plane's absolute cell is recovered from the agent cell plus its window offset."""
    obs = torch.from_numpy(env_observations(200, seed=3))  # (N, 637)
    embedding = EgocentricGridEmbedding(obs.shape[-1], G, width=8)
    features = embedding.features(obs)  # (N, F)
    n_planes = obs.shape[-1] // (G * G)
    ego = features[:, : (n_planes - 1) * WINDOW * WINDOW].reshape(-1, n_planes - 1, WINDOW, WINDOW)
    agent_abs = features[:, -G * G :]
    assert torch.equal(agent_abs, obs[:, -G * G :])
    planes = obs.reshape(-1, n_planes, G, G)
    for row in range(obs.shape[0]):
        ar, ac = divmod(int(agent_abs[row].argmax()), G)
        for plane in range(n_planes - 1):
            assert ego[row, plane].sum() == 1  # the object is always inside the window
            dr, dc = (int(i) for i in (ego[row, plane] == 1).nonzero()[0])
            assert planes[row, plane, ar + dr - (G - 1), ac + dc - (G - 1)] == 1
    off_grid = features[:, (n_planes - 1) * WINDOW * WINDOW : -G * G].reshape(-1, WINDOW, WINDOW)
    assert torch.all(off_grid.sum((1, 2)) == WINDOW * WINDOW - G * G)


def test_egocentric_model_cache_matches_full_pass():
    config = TransformerConfig(width=32, n_layers=2, n_heads=2, mlp_hidden=48, input_encoding="egocentric")
    torch.manual_seed(0)
    model = CausalTransformer(config).eval()
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.normal_(0.0, 0.3)
    obs = torch.from_numpy(env_observations(60, seed=5)).reshape(2, 30, -1)
    full = model(obs)
    cache = model.init_cache(2, max_len=30)
    for t in range(30):
        step = model.step(obs[:, t], cache)
        torch.testing.assert_close(step.action_logits, full.action_logits[:, t], atol=1e-5, rtol=0)
    assert full.action_logits.std() > 0.1


def test_bad_encoding_arguments_raise():
    with pytest.raises(ValueError, match="input_encoding"):
        TransformerConfig(input_encoding="conv")
    with pytest.raises(ValueError, match="obs_dim=50"):
        EgocentricGridEmbedding(50, G, width=8)
