"""Ground-truth-label linear residual-stream controllers (SPEC A§4.2, Tables A7/A8; paper Fig. 4).

One controller per ground-truth subgoal ``g``, inserted at one layer of the *frozen* base model
and trained to maximise the log-likelihood of the D* expert actions (λ = 0):

- grid (Table A7): low rank, ``e ← e + A_g (B_gᵀ e)`` with rank 16;
- ant (Table A8): full linear, ``e ← e + U_g e`` with ``U_g`` of shape ``W × W``.

Two parameterisations (``ControllerConfig.form``):

- ``"hypernetwork"`` (default, the paper's, SPEC A§4.2 "Implementation", App. C.3): a
  metacontroller with β ≡ 1 and ``z = onehot(g, K)`` fed to the hypernetwork decoder ``f_hyp``
  (:class:`agents.models.controller.ControllerHypernetwork`, one hidden layer of 32, the
  metacontroller's initialisation). The ``K`` controllers are decoded once per forward from the
  ``K`` one-hot codes and applied like the lookup form (one ``W × W`` matrix per timestep is never built).
- ``"lookup"``: one ``(A_g, B_g)`` (or ``U_g``) stored per subgoal, ``A`` (and ``U``) starting at
  zero so that every controller starts as the identity. Same expressivity, but not the same
  fit: on the grid `default` backbone the lookup form crosses unseen subgoal transitions about
  half as often (``results/hypernet_controllers/NOTE.md``). Every ground-truth-controller result
  committed before session 29 used it (``--controller-form lookup`` reproduces them).

Evaluation switches the controller by the ground-truth subgoal sequence on the unseen
post-training task (``HierGrid-v0`` / ``HierAnt-v0``, SPEC A§4.2 "Evaluation"); the env's
``info["subgoal"]`` is read by the evaluator only, never by a learning agent.

In the lookup form ``B`` uses the model's variance-scaling initialiser.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from agents.checkpoints import CheckpointError, load_checkpoint, load_model_state, module_fingerprint, save_checkpoint
from agents.lower_residuals import LowerResiduals
from agents.models.base_models import BaseModel
from agents.models.controller import ControllerHypernetwork, freeze, low_rank_control
from agents.models.transformer import variance_scaling_
from agents.pretrain import batch_tensors
from agents.rollouts import RolloutStats, Steering, evaluate_policy, info_subgoals
from agents.training_utils import batch_to_device, check_numbers, check_positive_ints, model_on_device, resolve_device
from hier_envs.datasets import EpisodeDataset


CONTROLLER_FORMS = ("hypernetwork", "lookup")
"""Parameterisations of :class:`SubgoalControllers` (``ControllerConfig.form``)."""


@dataclass(frozen=True)
class ControllerConfig:
    """Ground-truth controller training (SPEC A§4.2, Tables A7/A8; presets SPEC B5)."""

    rank: int | None = 16
    """Rank r of each low-rank controller (Table A7); ``None`` means a full ``W × W`` linear
    controller (the ant, Table A8)."""
    n_subgoals: int = 4
    """Number of abstract actions K (A, B, C, D)."""
    train_steps: int = 800
    """Optimiser steps (paper: 3,200)."""
    batch_size: int = 128
    """Episodes per batch (paper: 512)."""
    learning_rate: float = 1e-3
    """AdamW learning rate (Table A7)."""
    weight_decay: float = 0.03
    """AdamW weight decay (Table A7)."""
    seed: int = 0
    """Seeds initialisation and batch sampling."""
    form: str = "hypernetwork"
    """``"hypernetwork"``: the paper's decoder ``f_hyp(onehot(g))`` (App. C.3); ``"lookup"``: one
    stored matrix per subgoal, starting at the identity (this package's form before session 29)."""
    decoder_hidden: int = 32
    """Hidden width of the hypernetwork form's decoder (Table A9: 32, as the metacontroller's)."""
    init_scale: float = 1.0
    """Variance-scaling factor of the hypernetwork form's decoder (the metacontroller's default,
    ``MetacontrollerConfig.init_scale``)."""

    def __post_init__(self) -> None:
        check_positive_ints(self, ("n_subgoals", "train_steps", "batch_size", "decoder_hidden"))
        check_positive_ints(self, ("rank",), allow_none=True)
        check_numbers(self, {"learning_rate": "> 0", "weight_decay": ">= 0", "init_scale": "> 0"})
        if self.form not in CONTROLLER_FORMS:
            raise ValueError(f"ControllerConfig.form must be one of {CONTROLLER_FORMS}, got {self.form!r}")

    def settings(self) -> dict[str, Any]:
        """The fields a fit depends on, for the studies' stage records: all of them for the
        hypernetwork form; for the lookup form, the ones it had before ``form`` existed, so that
        run directories made then are reused rather than refused."""
        values = dataclasses.asdict(self)
        if self.form == "lookup":
            for name in ("form", "decoder_hidden", "init_scale"):
                del values[name]
        return values


CONTROLLER_PRESETS: dict[str, ControllerConfig] = {
    "smoke": ControllerConfig(train_steps=20, batch_size=16),
    "default": ControllerConfig(train_steps=800, batch_size=128),
    "paper": ControllerConfig(train_steps=3200, batch_size=512),
}
"""Grid presets: ``paper`` is Table A7."""

ANT_CONTROLLER_PRESETS: dict[str, ControllerConfig] = {
    "smoke": ControllerConfig(rank=None, train_steps=10, batch_size=4, learning_rate=3e-4),
    "default": ControllerConfig(rank=None, train_steps=400, batch_size=32, learning_rate=3e-4, form="lookup"),
    "paper": ControllerConfig(rank=None, train_steps=3200, batch_size=256, learning_rate=3e-4),
}
"""Ant presets (full linear controllers): ``paper`` is Table A8; ``default`` fits one insertion
layer in about 5 minutes on 2 CPU cores. ``default`` keeps the lookup form, which starts at the
identity: the hypernetwork form is unmeasured on the ant, and its decoder at the metacontroller's
initialisation rewrites the Hawk model's layer-4 residual about 7× over
(``results/ant_metacontroller_init/NOTE.md``)."""


class SubgoalControllers(nn.Module):
    """``K`` linear controllers (SPEC A§4.2, Eq. 1): low rank ``U_g = A_g B_gᵀ`` when ``rank`` is
    an int, a full ``W × W`` matrix ``U_g`` when ``rank`` is ``None``; decoded from ``onehot(g)``
    by a hypernetwork (``form="hypernetwork"``, the paper's) or stored per subgoal (``"lookup"``)."""

    def __init__(self, width: int, n_subgoals: int, rank: int | None, *, form: str,
                 decoder_hidden: int = 32, init_scale: float = 1.0) -> None:
        super().__init__()
        if form not in CONTROLLER_FORMS:
            raise ValueError(f"form must be one of {CONTROLLER_FORMS}, got {form!r}")
        self.n_subgoals, self.form = n_subgoals, form
        if form == "hypernetwork":
            kind = "linear" if rank is None else "low_rank"
            self.decoder = ControllerHypernetwork(n_subgoals, decoder_hidden, width, kind, rank or width, init_scale)
        elif rank is None:
            self.u = nn.Parameter(torch.zeros(n_subgoals, width, width))  # (K, W, W)
        else:
            self.a = nn.Parameter(torch.zeros(n_subgoals, width, rank))  # (K, W, r)
            self.b = nn.Parameter(torch.empty(n_subgoals, width, rank))  # (K, W, r)
            for k in range(n_subgoals):
                variance_scaling_(self.b.data[k].T)

    @classmethod
    def from_config(cls, width: int, config: ControllerConfig) -> SubgoalControllers:
        """The controllers ``config`` describes for a base model of residual ``width``."""
        return cls(width, config.n_subgoals, config.rank, form=config.form, decoder_hidden=config.decoder_hidden,
                   init_scale=config.init_scale)

    def matrices(self) -> tuple[Tensor, Tensor] | Tensor:
        """Every subgoal's controller: ``(A, B)`` of ``(K, W, r)`` each, or ``U`` of ``(K, W, W)``."""
        if self.form == "hypernetwork":
            codes = torch.eye(self.n_subgoals, device=self.decoder[0].weight.device)  # (K, K): onehot(g) per row
            return self.decoder.decode(codes)
        return self.u if hasattr(self, "u") else (self.a, self.b)

    def forward(self, residual: Tensor, subgoals: Tensor) -> Tensor:
        """Apply the controller of ``subgoals`` (``(...)`` long) to ``residual`` (``(..., W)``)."""
        if subgoals.min() < 0 or subgoals.max() >= self.n_subgoals:
            raise ValueError(f"subgoal ids must be in [0, {self.n_subgoals}), got {subgoals.unique().tolist()}")
        matrices = self.matrices()
        if isinstance(matrices, Tensor):
            # all K updates U_k e, then each row's own: (..., K, W) instead of gathering a
            # (..., W, W) matrix per timestep (K = 4 matmuls, no per-step W × W copies)
            updates = torch.einsum("...w,kvw->...kv", residual, matrices)  # (..., K, W)
            index = subgoals[..., None, None].expand(*subgoals.shape, 1, residual.shape[-1])
            return residual + updates.gather(-2, index).squeeze(-2)
        a, b = matrices
        return low_rank_control(residual, a[subgoals], b[subgoals])


def train_subgoal_controllers(
    model: BaseModel,
    dataset: EpisodeDataset,
    layer: int,
    config: ControllerConfig,
    progress: bool = True,
    device: str | torch.device = "cpu",
) -> tuple[SubgoalControllers, list[float]]:
    """Fit the controllers at ``layer`` on D* with the base model frozen; returns them (on the CPU)
    and the loss curve.

    ``device`` is where they are fitted (the ``paper`` preset's 3,200 steps at batch 512 per layer
    want a GPU); a ``model`` elsewhere is copied there and the caller's stays where it is. The
    initialisation and the batches are drawn on the CPU, so the device changes only the rounding.
    """
    device = resolve_device(device)
    model = model_on_device(freeze(model), device)
    torch.manual_seed(config.seed)
    controllers = SubgoalControllers.from_config(model.config.width, config).to(device)
    optimizer = torch.optim.AdamW(controllers.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    rng = np.random.default_rng([config.seed, 23])
    losses: list[float] = []
    lower_residuals = LowerResiduals(model, dataset, layer)
    for _ in tqdm(range(config.train_steps), desc=f"controllers@{layer}", disable=not progress, leave=False):
        indices = rng.integers(dataset.n_episodes, size=config.batch_size)
        batch = batch_to_device(batch_tensors(dataset, indices), device)
        residual = lower_residuals(indices, batch)  # (B, T, W)
        controlled = controllers(residual, batch["subgoals"].clamp(min=0))
        output = model.forward_upper(controlled, layer)
        loss = model.loss(output, batch, 0.0)["action_nll"]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    return controllers.cpu(), losses


def relabel_with_task_ids(dataset: EpisodeDataset, tasks: np.ndarray) -> EpisodeDataset:
    """``dataset`` with every step labelled by its episode's row in ``tasks`` (``(K, task_len)``
    colour ids, padded with -1 like ``episode_tasks``) instead of its subgoal.

    Controllers fitted on these labels are *per-task constant*: one controller held for a whole
    episode, never switched. Against the per-subgoal ones they measure how much switching at
    subgoal boundaries is worth on a given backbone (the distortion references of
    ``agents.internal_rl_study``, SPEC A§5.4). An episode whose task is not in ``tasks`` raises.
    """
    tasks = np.asarray(tasks)
    episode_tasks = dataset.episode_tasks
    if tasks.ndim != 2 or tasks.shape[1] != episode_tasks.shape[1]:
        raise ValueError(f"tasks must be (K, {episode_tasks.shape[1]}) like the dataset's episode_tasks, got {tasks.shape}")
    matches = (episode_tasks[:, None, :] == tasks[None, :, :]).all(-1)  # (N, K)
    unknown = np.flatnonzero(~matches.any(1))
    if len(unknown):
        raise ValueError(f"episode {int(unknown[0])}'s task {episode_tasks[unknown[0]].tolist()} is not in tasks")
    task_ids = matches.argmax(1)
    return dataclasses.replace(dataset, subgoals=np.repeat(task_ids, dataset.episode_lengths).astype(np.int64))


@torch.no_grad()
def controlled_action_nll(
    model: BaseModel, controllers: SubgoalControllers | None, dataset: EpisodeDataset, layer: int, chunk: int = 256
) -> float:
    """Mean per-step action NLL of ``dataset``'s actions under the frozen model, steered at ``layer``
    by the controller of each step's label (``None``: unsteered)."""
    totals, n_steps = 0.0, 0
    for start in range(0, dataset.n_episodes, chunk):
        batch = batch_tensors(dataset, np.arange(start, min(start + chunk, dataset.n_episodes)))
        residual = model.forward_lower(batch["observations"], layer)
        if controllers is not None:
            residual = controllers(residual, batch["subgoals"].clamp(min=0))
        nll = model.action_nll_per_step(model.forward_upper(residual, layer), batch["actions"])
        totals += float((nll * batch["mask"]).sum())
        n_steps += int(batch["mask"].sum())
    return totals / n_steps


SUBGOAL_CONTROLLERS_KIND = "subgoal_controllers"
"""Checkpoint kind of fitted ground-truth controllers."""


def save_subgoal_controllers(
    path: str | Path, controllers: SubgoalControllers, config: ControllerConfig, layer: int,
    base_model: BaseModel | None = None,
) -> None:
    """Write fitted controllers with the config and insertion layer they were fitted with (atomic),
    and the fingerprint of ``base_model`` when given, so that a later reuse can check the backbone."""
    payload = {"kind": SUBGOAL_CONTROLLERS_KIND, "model": controllers.state_dict(), "optimizer": None,
               "step": config.train_steps, "config": dataclasses.asdict(config), "layer": layer}
    if base_model is not None:
        payload["base_model_fingerprint"] = module_fingerprint(base_model)
    save_checkpoint(path, payload)


def load_subgoal_controllers(
    path: str | Path, width: int, *, expect_config: ControllerConfig | None = None,
    expect_layer: int | None = None, expect_base_model: BaseModel | None = None,
) -> SubgoalControllers:
    """Controllers written by :func:`save_subgoal_controllers` for a base model of residual ``width``,
    rebuilt from their stored config; a wrong kind, config or shape raises ``CheckpointError`` naming the file.

    ``expect_*`` make reuse safe: controllers fitted with another config, at another layer or on
    another base model (or saved without its fingerprint) are refused, naming the file.
    """
    record = load_checkpoint(path, expected_kind=SUBGOAL_CONTROLLERS_KIND)
    try:
        # checkpoints written before the ``form`` field existed hold lookup-form controllers
        config = ControllerConfig(**{"form": "lookup", **record["config"]})
    except (KeyError, TypeError, ValueError) as error:
        raise CheckpointError(f"{path}: controller checkpoint has no valid config ({error})") from error
    if expect_config is not None and config != expect_config:
        raise CheckpointError(f"{path}: controllers were fitted with {config}, expected {expect_config}")
    if expect_layer is not None and record.get("layer") != expect_layer:
        raise CheckpointError(f"{path}: controllers were fitted at layer {record.get('layer')}, expected {expect_layer}")
    if expect_base_model is not None:
        stored = record.get("base_model_fingerprint")
        if stored is None:
            raise CheckpointError(f"{path}: controllers were saved without a base-model fingerprint; refit them")
        if stored != module_fingerprint(expect_base_model):
            raise CheckpointError(f"{path}: controllers were fitted on another base model")
    controllers = SubgoalControllers.from_config(width, config)
    load_model_state(controllers, record["model"], path)
    return controllers


def ground_truth_steering(controllers: SubgoalControllers) -> Steering:
    """Steer with the controller of each env's current ground-truth subgoal (evaluation only)."""

    def steer(residual: Tensor, infos: dict[str, Any], t: int) -> Tensor:
        subgoals = torch.from_numpy(info_subgoals(infos).clip(min=0))  # (B,); ended rows' outputs are ignored
        with torch.no_grad():
            return controllers(residual, subgoals)

    return steer


def evaluate_subgoal_controllers(
    model: BaseModel,
    controllers: SubgoalControllers,
    layer: int,
    env_id: str = "HierGrid-v0",
    n_episodes: int = 1000,
    seed: int = 10_000,
    greedy: bool = False,
    batch_envs: int = 250,
    env_kwargs: dict[str, Any] | None = None,
) -> RolloutStats:
    """Success of the base model steered by ground-truth-switched controllers (SPEC A§4.2);
    ``env_kwargs`` override the env's keywords (e.g. another ``tasks=`` pool)."""
    return evaluate_policy(
        model, env_id, n_episodes, seed, batch_envs=batch_envs,
        steering_factory=lambda: ground_truth_steering(controllers), controlled_layer=layer, greedy=greedy,
        env_kwargs=env_kwargs,
    )
