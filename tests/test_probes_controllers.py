"""Linear probes and ground-truth controllers (SPEC A§4.1, A§4.2, §9.2 items 1 and 7)."""

import dataclasses

import numpy as np
import pytest
import torch

from agents.controllers import (
    CONTROLLER_PRESETS,
    SubgoalControllers,
    controlled_action_nll,
    ground_truth_steering,
    load_subgoal_controllers,
    relabel_with_task_ids,
    save_subgoal_controllers,
    train_subgoal_controllers,
)
from agents.models.transformer import TRANSFORMER_PRESETS, CausalTransformer
from agents.probes import PROBE_PRESETS, train_probes
from agents.rollouts import ENDINGS, episode_endings, evaluate_policy
from hier_envs.datasets import generate_grid_dataset


def test_probes_find_linear_information_only_where_it_is():
    generator = torch.Generator().manual_seed(0)
    n, width = 4000, 16
    labels = torch.randint(0, 4, (n,), generator=generator)
    noise = torch.randn(2, n, width, generator=generator)
    informative = noise[1].clone()
    informative[:, :4] += 3.0 * torch.nn.functional.one_hot(labels, 4)
    residuals = torch.stack([noise[0], informative])  # layer 0: noise, layer 1: decodable
    is_train = torch.arange(n) >= 1000
    config = dataclasses.replace(PROBE_PRESETS["smoke"], train_steps=300, batch_size=256)
    result = train_probes(residuals, labels, is_train, config)
    assert result["val_accuracy"][1] > 0.9
    assert abs(result["val_accuracy"][0] - 0.25) < 0.06


def test_controllers_start_as_identity_and_pick_per_row():
    controllers = SubgoalControllers(width=8, n_subgoals=4, rank=2, form="lookup")
    residual = torch.randn(3, 8)
    subgoals = torch.tensor([0, 2, 3])
    torch.testing.assert_close(controllers(residual, subgoals), residual)
    with torch.no_grad():
        controllers.a.normal_()
    out = controllers(residual, subgoals)
    for row, g in enumerate(subgoals.tolist()):
        u = controllers.a[g] @ controllers.b[g].T  # explicit (W, W) product
        torch.testing.assert_close(out[row], residual[row] + u @ residual[row])
    with pytest.raises(ValueError, match="subgoal"):
        controllers(residual, torch.tensor([0, 1, 4]))


@pytest.mark.parametrize("form", ["hypernetwork", "lookup"])
def test_training_moves_only_the_controllers(form):
    torch.manual_seed(0)
    model = CausalTransformer(TRANSFORMER_PRESETS["smoke"])
    before = [p.clone() for p in model.parameters()]
    dataset = generate_grid_dataset(40, 0.0, seed=3, progress=False)
    config = dataclasses.replace(CONTROLLER_PRESETS["smoke"], train_steps=15, learning_rate=1e-2, form=form)
    torch.manual_seed(config.seed)
    initial = SubgoalControllers.from_config(model.config.width, config).state_dict()
    controllers, losses = train_subgoal_controllers(model, dataset, 1, config, progress=False)
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))  # frozen, bit-identical
    assert not any(p.requires_grad for p in model.parameters())
    assert controllers.form == form and losses[-1] < losses[0]
    trained = controllers.state_dict()
    assert trained.keys() == initial.keys() and all(not torch.equal(trained[k], initial[k]) for k in trained)


@pytest.mark.parametrize("rank", [3, None])
def test_hypernetwork_form_is_the_decoder_applied_to_one_hot_codes(rank):
    """The paper's form (SPEC A§4.2 "Implementation"): U_g = f_hyp(onehot(g)), applied per row
    exactly as the decoder's own ``control`` applies it to a one-hot code."""
    torch.manual_seed(0)
    controllers = SubgoalControllers(6, 4, rank, form="hypernetwork")
    assert not hasattr(controllers, "a") and not hasattr(controllers, "u")
    residual = torch.randn(2, 5, 6)
    subgoals = torch.tensor([[0, 1, 2, 3, 3], [2, 2, 0, 1, 0]])
    codes = torch.nn.functional.one_hot(subgoals, 4).float()
    expected = controllers.decoder.control(residual, codes)
    torch.testing.assert_close(controllers(residual, subgoals), expected)
    assert not torch.allclose(expected, residual)  # at init_scale 1.0 it does not start as the identity
    with pytest.raises(ValueError, match="subgoal"):
        controllers(residual, subgoals + 1)
    with pytest.raises(ValueError, match="form"):
        SubgoalControllers(6, 4, rank, form="table")
    with pytest.raises(ValueError, match="form"):
        dataclasses.replace(CONTROLLER_PRESETS["smoke"], form="table")


def test_ground_truth_steering_reads_info_subgoal():
    controllers = SubgoalControllers(width=4, n_subgoals=4, rank=1, form="lookup")
    with torch.no_grad():
        controllers.a.copy_(torch.arange(4.0).view(4, 1, 1).expand(4, 4, 1))
        controllers.b.fill_(1.0)
    steer = ground_truth_steering(controllers)
    residual = torch.ones(3, 4)
    out = steer(residual, {"subgoal": np.array([2, -1, 0])}, 0)  # -1 (episode over) maps to a valid id
    torch.testing.assert_close(out[:, 0], torch.tensor([1 + 2 * 4.0, 1.0, 1.0]))


def test_evaluate_policy_is_seeded():
    torch.manual_seed(0)
    model = CausalTransformer(TRANSFORMER_PRESETS["smoke"])
    first = evaluate_policy(model, "HierGrid-v0", 12, seed=5, batch_envs=6)
    second = evaluate_policy(model, "HierGrid-v0", 12, seed=5, batch_envs=6)
    np.testing.assert_array_equal(first.lengths, second.lengths)
    assert len(first.success) == 12 and (first.lengths >= 1).all() and (first.lengths <= 100).all()
    for bad in ({"n_episodes": True}, {"n_episodes": 2.5}, {"batch_envs": 0}):  # True would run 1 episode
        arguments = {"n_episodes": 12, "batch_envs": 6, **bad}
        with pytest.raises(ValueError, match=next(iter(bad))):
            evaluate_policy(model, "HierGrid-v0", seed=5, **arguments)


@pytest.mark.parametrize("action", [0, 1, 2, 3])
def test_rollout_endings_match_single_env_replays(action):
    """A model that always takes ``action`` (greedy, huge bias): each episode's recorded ending and
    length equal a single ``HierGrid-v0`` env replaying that action from the same seed."""
    import gymnasium as gym

    torch.manual_seed(0)
    model = CausalTransformer(TRANSFORMER_PRESETS["smoke"])
    with torch.no_grad():
        model.action_head.bias.copy_(torch.nn.functional.one_hot(torch.tensor(action), 4) * 1e3)
    stats = evaluate_policy(model, "HierGrid-v0", 24, seed=40, batch_envs=8, greedy=True)
    env = gym.make("HierGrid-v0")
    for episode in range(24):
        env.reset(seed=40 + episode)
        for length in range(1, 101):
            _, _, terminated, truncated, info = env.step(action)
            if terminated or truncated:
                break
        expected = "success" if info["success"] else info["failure"] or "timeout"
        assert (stats.endings[episode], stats.lengths[episode]) == (expected, length), episode
    assert sum(stats.ending_counts().values()) == 24 and set(stats.endings) <= set(ENDINGS)


def test_episode_endings_precedence_and_unknown_kinds():
    endings = episode_endings(np.array([True, False, False, False, False]),
                              np.array([None, "wrong_color", None, None, "fell"], dtype=object),
                              np.array([True, True, True, False, False]))
    assert endings.tolist() == ["success", "wrong_color", "timeout", "", "fell"]
    with pytest.raises(ValueError, match="'lava'"):
        episode_endings(np.array([False]), np.array(["lava"], dtype=object), np.array([False]))


def test_full_linear_controllers_apply_their_own_matrix():
    controllers = SubgoalControllers(width=5, n_subgoals=4, rank=None, form="lookup")
    residual = torch.randn(3, 5)
    subgoals = torch.tensor([3, 0, 3])
    torch.testing.assert_close(controllers(residual, subgoals), residual)  # U = 0: identity
    with torch.no_grad():
        controllers.u.normal_()
    out = controllers(residual, subgoals)
    for row, g in enumerate(subgoals.tolist()):
        torch.testing.assert_close(out[row], residual[row] + controllers.u[g] @ residual[row])


def test_ant_rollouts_clip_actions_and_read_none_subgoals():
    from agents.models.hawk import HAWK_PRESETS, HawkSSM
    from agents.rollouts import info_subgoals

    assert info_subgoals({"subgoal": np.array([1, None, 3], dtype=object),
                          "_subgoal": np.array([True, True, False])}).tolist() == [1, -1, -1]
    torch.manual_seed(0)
    model = HawkSSM(HAWK_PRESETS["smoke"])
    with torch.no_grad():
        model.action_head.bias[:8].fill_(50.0)  # mean torque far outside [-1, 1]: must be clipped, not rejected
    first = evaluate_policy(model, "HierAnt-v0", 2, seed=3, batch_envs=2, greedy=True)
    second = evaluate_policy(model, "HierAnt-v0", 2, seed=3, batch_envs=2, greedy=True)
    np.testing.assert_array_equal(first.lengths, second.lengths)
    np.testing.assert_array_equal(first.endings, second.endings)
    assert len(first.success) == 2 and (first.lengths <= 500).all() and set(first.endings) <= set(ENDINGS)


@pytest.mark.parametrize("form", ["hypernetwork", "lookup"])
@pytest.mark.parametrize("rank", [3, None])
def test_saved_controllers_load_with_their_own_config(rank, form, tmp_path):
    from agents.checkpoints import CheckpointError, load_checkpoint, save_checkpoint

    torch.manual_seed(0)
    controllers = SubgoalControllers(8, 4, rank, form=form)
    for parameter in controllers.parameters():
        parameter.data.normal_()
    config = dataclasses.replace(CONTROLLER_PRESETS["smoke"], rank=rank, form=form)
    save_subgoal_controllers(tmp_path / "c.pt", controllers, config, layer=1)
    loaded = load_subgoal_controllers(tmp_path / "c.pt", 8)
    assert loaded.form == form
    assert all(torch.equal(a, b) for a, b in zip(controllers.state_dict().values(), loaded.state_dict().values()))
    if form == "lookup":  # written before the form field existed: its config has no "form" and loads as lookup
        record = load_checkpoint(tmp_path / "c.pt")
        del record["config"]["form"], record["config"]["decoder_hidden"], record["config"]["init_scale"]
        save_checkpoint(tmp_path / "old_format.pt", record)
        assert load_subgoal_controllers(tmp_path / "old_format.pt", 8).form == "lookup"
    with pytest.raises(CheckpointError, match="c.pt"):
        load_subgoal_controllers(tmp_path / "c.pt", 16)  # a base model of another width
    save_checkpoint(tmp_path / "other.pt", {"kind": "metacontroller", "model": {}, "optimizer": None, "step": 0, "config": {}})
    with pytest.raises(CheckpointError, match="other.pt"):
        load_subgoal_controllers(tmp_path / "other.pt", 8)


def test_reused_controllers_must_match_config_layer_and_base_model(tmp_path):
    from agents.checkpoints import CheckpointError

    torch.manual_seed(0)
    model = CausalTransformer(TRANSFORMER_PRESETS["smoke"])
    other = CausalTransformer(TRANSFORMER_PRESETS["smoke"])  # same shapes, other weights
    width = model.config.width
    controllers = SubgoalControllers(width, 4, 3, form="lookup")
    config = dataclasses.replace(CONTROLLER_PRESETS["smoke"], rank=3, form="lookup")
    save_subgoal_controllers(tmp_path / "c.pt", controllers, config, layer=1, base_model=model)
    loaded = load_subgoal_controllers(tmp_path / "c.pt", width, expect_config=config, expect_layer=1, expect_base_model=model)
    assert all(torch.equal(a, b) for a, b in zip(controllers.state_dict().values(), loaded.state_dict().values()))
    for bad in ({"expect_base_model": other}, {"expect_layer": 2},
                {"expect_config": dataclasses.replace(config, train_steps=config.train_steps + 1)}):
        with pytest.raises(CheckpointError, match="c.pt"):
            load_subgoal_controllers(tmp_path / "c.pt", width, **bad)
    save_subgoal_controllers(tmp_path / "old.pt", controllers, config, layer=1)  # no fingerprint stored
    with pytest.raises(CheckpointError, match="old.pt.*fingerprint"):
        load_subgoal_controllers(tmp_path / "old.pt", width, expect_base_model=model)


def test_task_relabelling_holds_one_label_per_episode():
    dataset = generate_grid_dataset(30, 0.0, seed=5, progress=False)
    tasks = np.unique(dataset.episode_tasks, axis=0)
    relabelled = relabel_with_task_ids(dataset, tasks[::-1])  # any row order: ids index the given table
    starts = np.r_[0, np.cumsum(dataset.episode_lengths)[:-1]]
    for i, (start, length) in enumerate(zip(starts, dataset.episode_lengths)):
        labels = relabelled.subgoals[start : start + length]
        assert (labels == labels[0]).all() and (tasks[::-1][labels[0]] == dataset.episode_tasks[i]).all()
    assert np.array_equal(relabelled.actions, dataset.actions)  # only the labels change
    with pytest.raises(ValueError, match="not in tasks"):
        relabel_with_task_ids(dataset, tasks[1:] if len(tasks) > 1 else tasks + 1)
    with pytest.raises(ValueError, match="tasks must be"):
        relabel_with_task_ids(dataset, tasks[:, :3])


def test_controlled_action_nll_matches_the_model_loss():
    torch.manual_seed(0)
    model = CausalTransformer(TRANSFORMER_PRESETS["smoke"]).eval()
    dataset = generate_grid_dataset(12, 0.0, seed=2, progress=False)
    from agents.pretrain import evaluate_nll

    unsteered = controlled_action_nll(model, None, dataset, 1, chunk=5)  # chunks of unequal size are weighted by steps
    assert unsteered == pytest.approx(evaluate_nll(model, dataset, np.arange(12), 0.0)["action_nll"], rel=1e-5)
    controllers = SubgoalControllers(model.config.width, 4, 2, form="lookup")
    assert controlled_action_nll(model, controllers, dataset, 1) == pytest.approx(unsteered, rel=1e-5)  # identity at init
    with torch.no_grad():
        controllers.a.normal_()
    assert controlled_action_nll(model, controllers, dataset, 1) != pytest.approx(unsteered, rel=1e-3)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_controllers_fitted_on_the_gpu_come_back_on_the_cpu_near_the_cpu_fit():
    torch.manual_seed(0)
    model = CausalTransformer(TRANSFORMER_PRESETS["smoke"])
    dataset = generate_grid_dataset(30, 0.0, seed=0, progress=False)
    config = dataclasses.replace(CONTROLLER_PRESETS["smoke"], train_steps=5)
    on_cpu, cpu_losses = train_subgoal_controllers(model, dataset, 1, config, progress=False)
    on_gpu, gpu_losses = train_subgoal_controllers(model, dataset, 1, config, progress=False, device="cuda")
    assert all(p.device.type == "cpu" for p in (*on_gpu.parameters(), *model.parameters()))
    np.testing.assert_allclose(gpu_losses, cpu_losses, rtol=1e-3)
