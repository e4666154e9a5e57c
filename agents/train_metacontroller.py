"""Train the metacontroller on D* with the base model frozen (SPEC A§5.2–5.3, Table A9, B4).

A run directory holds ``latest.pt`` (resume), ``metacontroller.pt`` (final, kind
"metacontroller") and ``metrics.csv``. Re-running the same call resumes; the final weights
equal an uninterrupted run's (the batch sampler and the reparameterisation noise come from
checkpointed generators).

Each step: the frozen lower blocks give ``e_{1:T,l}`` (no gradient), the metacontroller
rewrites it, the frozen upper blocks give the action logits, and the ELBO loss of SPEC A§5.2
is minimised over the metacontroller's parameters only (§9.2 item 7).
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from agents.checkpoints import (
    CheckpointError,
    generator_state,
    load_checkpoint,
    load_model_state,
    module_fingerprint,
    save_checkpoint,
    set_generator_state,
)
from agents.lower_residuals import LowerResiduals
from agents.metacontroller import Metacontroller, MetacontrollerConfig, metacontroller_loss
from agents.models.controller import freeze
from agents.models.base_models import BaseModel, base_model_config_from_dict, base_model_config_to_dict, build_base_model
from agents.pretrain import LengthBucketSampler, batch_tensors
from agents.training_utils import (
    CsvLog, apply_gradients, batch_to_device, check_non_negative_ints, check_numbers, check_positive_ints,
    check_same_config, check_same_inputs, model_on_device, resolve_device, run_training_loop, set_threads,
)
from hier_envs.datasets import EpisodeDataset

METACONTROLLER_KIND = "metacontroller"
METRIC_FIELDS = ("step", "loss", "action_nll", "kl", "switches_per_episode", "elapsed_s")


@dataclass(frozen=True)
class MetacontrollerTrainConfig:
    """Metacontroller training (SPEC A§5.3, Table A9; presets SPEC B5)."""

    metacontroller: MetacontrollerConfig = field(default_factory=MetacontrollerConfig)
    """Architecture and α."""
    train_steps: int = 4000
    """Optimiser steps (paper: 64,000)."""
    batch_size: int = 128
    """Episodes per batch (paper: 512)."""
    learning_rate: float = 1e-3
    """AdamW learning rate, constant (Table A9)."""
    weight_decay: float = 0.03
    """AdamW weight decay (Table A9)."""
    log_every: int = 100
    """Steps between metric rows."""
    checkpoint_every: int = 200
    """Steps between rolling checkpoints."""
    length_buckets: int = 8
    """Length-bucketed batches, as in pretraining."""
    kl_warmup_steps: int = 0
    """α rises linearly to its value over this many steps (0: a step change, as the paper's constant
    α). Without an early phase the ramp starts from 0 at step 0 (in the first CPU experiments it did
    not prevent posterior collapse); with one it starts from ``early_kl_weight`` when that phase
    ends, so α leaves the early value gradually instead of jumping (NOT in the paper)."""
    switch_learning_rate_scale: float = 1.0
    """The switching unit's learning rate relative to ``learning_rate`` (1.0: one rate for every
    parameter, as the paper; NOT in the paper). On the CPU-sized grid runs β closes within the
    first ten Adam steps, before the codes carry information, and never reopens; a 10× slower
    switching unit (0.1) lets the codes become informative first and is the first setting here
    whose switches line up with subgoal boundaries (``results/metacontroller_diagnostics_6k``,
    ``results/metacontroller_switch_rate_6k``)."""
    early_kl_weight: float | None = None
    """α for the first ``early_kl_steps`` optimiser steps, before the configured α applies (None: the
    configured α throughout, as the paper; NOT in the paper). On the CPU-sized grid runs no constant
    α both finds subgoal-aligned switching and keeps it sparse: with the slow switching unit, α = 0.01
    finds it but switches ever more often (F1 ≤ 0.64), while α ≥ 0.05 from the start closes β for
    good. Training at α = 0.01 until the switches line up and then at α = 0.1 prunes the extra
    switches only partly (F1 0.867 and 0.655 on two seeds with a 4,250-step phase); α = 0.3 after
    the same phase gives 0.999 and 1.000 on those seeds, 0.000 on two others, and a 1,000-step ramp
    from 0.01 to 0.3 (``kl_warmup_steps``) rescues those; the same ramp after a 2,000-step phase is
    the grid ``default`` preset (``results/metacontroller_kl_schedule``)."""
    early_kl_steps: int = 0
    """Length of the ``early_kl_weight`` phase (0 with ``early_kl_weight`` None)."""
    cotrain: bool = False
    """Co-training ablation (SPEC A§5.4, C.4.2): the base model is trained jointly with the
    metacontroller on D*, starting from ``cotrain_init``."""
    cotrain_init: Literal["random", "pretrained"] = "random"
    """Where a co-trained base model starts (C.4.2): ``"random"``, a fresh initialisation from the
    base model's config and ``seed`` (the gridworld), or ``"pretrained"``, a copy of the given
    pretrained weights (the ant). Ignored without ``cotrain``."""
    seed: int = 0
    """Seeds initialisation, batches and the reparameterisation noise."""
    num_threads: int = 2

    def __post_init__(self) -> None:
        check_positive_ints(self, ("train_steps", "batch_size", "log_every", "checkpoint_every", "length_buckets",
                                   "num_threads"))
        if not isinstance(self.kl_warmup_steps, int) or self.kl_warmup_steps < 0:
            raise ValueError(f"MetacontrollerTrainConfig.kl_warmup_steps must be an int >= 0, got {self.kl_warmup_steps!r}")
        check_numbers(self, {"switch_learning_rate_scale": "> 0", "learning_rate": "> 0", "weight_decay": ">= 0"})
        if not isinstance(self.cotrain, bool):
            raise TypeError(f"MetacontrollerTrainConfig.cotrain must be a bool, got {self.cotrain!r}")
        if self.cotrain_init not in ("random", "pretrained"):
            raise ValueError(f"MetacontrollerTrainConfig.cotrain_init must be 'random' or 'pretrained', "
                             f"got {self.cotrain_init!r}")
        check_non_negative_ints(self, ("seed",))
        if self.early_kl_weight is not None:  # None: no early phase
            check_numbers(self, {"early_kl_weight": ">= 0"})
        if isinstance(self.early_kl_steps, bool) or not isinstance(self.early_kl_steps, int) or self.early_kl_steps < 0:
            raise ValueError(f"MetacontrollerTrainConfig.early_kl_steps must be an int >= 0, got {self.early_kl_steps!r}")
        if (self.early_kl_weight is None) != (self.early_kl_steps == 0):
            raise ValueError("MetacontrollerTrainConfig.early_kl_weight and early_kl_steps go together (a weight and "
                             f"a step count > 0, or None and 0), got {self.early_kl_weight!r} and {self.early_kl_steps!r}")
        if self.early_kl_steps >= self.train_steps:
            raise ValueError(f"MetacontrollerTrainConfig.early_kl_steps ({self.early_kl_steps}) must be below "
                             f"train_steps ({self.train_steps}), or the configured α never applies")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


ADDED_CONFIG_FIELDS = {"switch_learning_rate_scale": 1.0, "early_kl_weight": None, "early_kl_steps": 0,
                       "cotrain_init": "random"}
"""Fields added after metacontroller checkpoints were first written, with the value that reproduces
those runs: a stored config without one still resumes (``check_same_config(added_fields=...)``)."""


METACONTROLLER_PRESETS: dict[str, MetacontrollerTrainConfig] = {
    "smoke": MetacontrollerTrainConfig(
        train_steps=30, batch_size=16, log_every=10, checkpoint_every=10, num_threads=1
    ),
    "default": MetacontrollerTrainConfig(
        metacontroller=MetacontrollerConfig(kl_weight=0.3), train_steps=3500, switch_learning_rate_scale=0.1,
        early_kl_weight=0.01, early_kl_steps=2000, kl_warmup_steps=1000,
    ),
    "paper": MetacontrollerTrainConfig(train_steps=64_000, batch_size=512, log_every=1000, checkpoint_every=2000),
}
"""Grid presets: ``paper`` is Table A9 (one learning rate, constant α = 0.1). ``default`` is the
switching recipe measured on the CPU-sized grid backbone (NOT in the paper): a 10× slower switching
unit, α = 0.01 for 2,000 steps while switches at the subgoal boundaries emerge, then α rising
linearly to 0.3 (a value of the paper's sweep) over 1,000 steps to prune the extra ones, and 500
steps at 0.3 (``results/metacontroller_kl_schedule``): held-out switching F1 (±1) 0.999 / 1.000 /
0.998 / 0.999 / 0.999 at step 3,500 on seeds 0 / 1 / 3 / 4 / 5, and 1.000 on seed 2 with switch
bias 1.0; seed 4 from scratch took 22.4 min at 2 threads here. The same ramp after a 4,250-step
phase (6,000 steps) gave 0.996 / 1.000 / 1.000 / 0.999 / 0.998 on seeds 0 / 1 / 3 / 4 / 5; a jump
straight from 0.01 to 0.3 instead of the ramp collapsed seed 3 and seed 2 (bias 1.0) to one code per episode (F1
0.000 / 0.416), and so did a jump after a 3,000-step phase on seeds 0 and 1. Seed 2 with the
default switch bias closes β within its first 100 steps, before α changes."""

_ANT_METACONTROLLER = MetacontrollerConfig(controller="linear")
ANT_METACONTROLLER_PRESETS: dict[str, MetacontrollerTrainConfig] = {
    "smoke": MetacontrollerTrainConfig(
        metacontroller=_ANT_METACONTROLLER, train_steps=10, batch_size=4, log_every=5, checkpoint_every=5, num_threads=1
    ),
    "default": MetacontrollerTrainConfig(
        metacontroller=_ANT_METACONTROLLER, train_steps=600, batch_size=16, log_every=50, checkpoint_every=50
    ),
    "paper": MetacontrollerTrainConfig(
        metacontroller=_ANT_METACONTROLLER, train_steps=32_000, batch_size=128, learning_rate=3e-4, log_every=1000,
        checkpoint_every=2000,
    ),
}
"""Ant presets (full linear controller, Table A10: 32,000 steps at batch 128, lr 3e-4); ``default``
is sized for about 15 minutes on 2 CPU cores (an ant episode is ~290 steps and the decoder emits
a ``W × W`` matrix per step), with the grid default's learning rate for its far smaller budget."""


def kl_weight_at(step: int, config: MetacontrollerTrainConfig) -> float:
    """α at optimiser step ``step`` (0-based): ``early_kl_weight`` for the first ``early_kl_steps``,
    then a linear ramp over ``kl_warmup_steps`` (from ``early_kl_weight``, or from 0 without an early
    phase) to the configured α."""
    if step < config.early_kl_steps:
        return float(config.early_kl_weight)
    target = config.metacontroller.kl_weight
    if config.kl_warmup_steps == 0:
        return target
    start = 0.0 if config.early_kl_weight is None else float(config.early_kl_weight)
    fraction = min(1.0, (step - config.early_kl_steps) / config.kl_warmup_steps)
    return start + (target - start) * fraction


def build_optimizer(config: MetacontrollerTrainConfig, base_parameters: list[torch.nn.Parameter],
                    metacontroller: Metacontroller) -> torch.optim.AdamW:
    """AdamW over ``base_parameters`` (co-training) and the metacontroller; the switching unit in a
    second parameter group at ``switch_learning_rate_scale × learning_rate`` when that is not 1."""
    if config.switch_learning_rate_scale == 1.0:  # one group in module order: older checkpoints' optimizer state still fits
        groups: list[dict[str, Any]] = [{"params": base_parameters + list(metacontroller.parameters())}]
    else:
        switch = list(metacontroller.switch.parameters())
        switch_ids = {id(parameter) for parameter in switch}
        rest = base_parameters + [p for p in metacontroller.parameters() if id(p) not in switch_ids]
        groups = [{"params": rest}, {"params": switch, "lr": config.learning_rate * config.switch_learning_rate_scale}]
    return torch.optim.AdamW(groups, lr=config.learning_rate, weight_decay=config.weight_decay)


def load_cotrained_base_model(path: str | Path) -> BaseModel:
    """The jointly trained base model stored with a co-trained metacontroller."""
    record = load_checkpoint(path, expected_kind=METACONTROLLER_KIND)
    if "base_model" not in record:
        raise CheckpointError(f"{path}: not a co-trained metacontroller (no base_model weights)")
    base_model = build_base_model(base_model_config_from_dict(record["base_model_config"]))
    load_model_state(base_model, record["base_model"], path)
    return base_model


def load_metacontroller(path: str | Path, width: int, expect_layer: int | None = None) -> Metacontroller:
    """Load ``metacontroller.pt`` (or ``latest.pt``) for a base model of residual ``width``.

    ``expect_layer``, when given, is the layer the caller will insert its controller at: a
    metacontroller trained at another layer is refused (its codes mean nothing there).
    """
    record = load_checkpoint(path, expected_kind=METACONTROLLER_KIND)
    if expect_layer is not None and record.get("controlled_layer") != expect_layer:
        raise CheckpointError(f"{path}: metacontroller was trained at layer {record.get('controlled_layer')!r}, "
                              f"expected layer {expect_layer}")
    try:
        config = MetacontrollerConfig(**record["config"]["metacontroller"])
    except (KeyError, TypeError, ValueError) as error:
        raise CheckpointError(f"{path}: metacontroller checkpoint has no valid config ({error})") from error
    metacontroller = Metacontroller(width, config)
    load_model_state(metacontroller, record["model"], path)
    return metacontroller


def train_metacontroller(
    config: MetacontrollerTrainConfig,
    base_model: BaseModel,
    dataset: EpisodeDataset,
    run_dir: str | Path,
    *,
    controlled_layer: int | None = None,
    stop_after: int | None = None,
    progress: bool = True,
    device: str | torch.device = "cpu",
    residual_table_max_bytes: int | None = None,
) -> Path:
    """Train (or resume) a metacontroller; returns the path of ``metacontroller.pt``.

    ``device`` is where it trains (not part of the configuration: a run may resume on another
    device); a frozen ``base_model`` elsewhere is copied there and the caller's stays where it is.
    Batches and noise are drawn on the CPU from the same generators whatever the device.
    ``residual_table_max_bytes`` is :class:`~agents.lower_residuals.LowerResiduals`' memory cap
    (None: its default; 0 recomputes the frozen lower half every batch, as
    ``benchmarks/lower_residuals_speed.py`` does to time the table against it).
    """
    device = resolve_device(device)
    if residual_table_max_bytes is not None:
        if config.cotrain:
            raise ValueError("residual_table_max_bytes applies to a frozen base model's residual table; this run "
                             "co-trains the base model (cotrain=True), which has no table")
        if isinstance(residual_table_max_bytes, bool) or not isinstance(residual_table_max_bytes, int) \
                or residual_table_max_bytes < 0:
            raise ValueError(f"residual_table_max_bytes must be None or an int >= 0, got {residual_table_max_bytes!r}")
    set_threads(config.num_threads)
    run_dir = Path(run_dir)
    final_path, latest_path = run_dir / "metacontroller.pt", run_dir / "latest.pt"
    config_dict = config.to_dict()
    layer = base_model.config.controlled_layer if controlled_layer is None else controlled_layer
    # what the config does not say: the data, the insertion layer and the backbone (co-training
    # from random weights builds a fresh one from its config and the seed, so its config identifies it)
    inputs: dict[str, Any] = {"dataset_sha256": dataset.sha256, "controlled_layer": layer}
    if config.cotrain and config.cotrain_init == "random":
        inputs["base_model_config"] = base_model_config_to_dict(base_model.config)
    else:
        inputs["base_model_fingerprint"] = module_fingerprint(base_model)
    if final_path.exists():
        record = load_checkpoint(final_path, expected_kind=METACONTROLLER_KIND)
        check_same_config(final_path, record, config_dict, "MetacontrollerTrainConfig", ADDED_CONFIG_FIELDS)
        check_same_inputs(final_path, record, inputs)
        return final_path
    torch.manual_seed(config.seed)
    if config.cotrain:
        if config.cotrain_init == "random":
            base_model = build_base_model(base_model.config).to(device)  # fresh initialisation, trained jointly
        else:  # the pretrained weights, trained jointly; the caller's frozen model stays as it is
            base_model = copy.deepcopy(base_model).to(device).requires_grad_(True).train()
        trainable = [*base_model.parameters()]
    else:
        base_model = model_on_device(freeze(base_model), device)
        trainable = []
    metacontroller = Metacontroller(base_model.config.width, config.metacontroller).to(device)
    optimizer = build_optimizer(config, trainable, metacontroller)
    batch_rng = np.random.default_rng([config.seed, 41])
    noise = torch.Generator().manual_seed(config.seed + 1)
    sampler = LengthBucketSampler(np.arange(dataset.n_episodes), dataset.episode_lengths, config.length_buckets)
    log = CsvLog(run_dir / "metrics.csv", METRIC_FIELDS)
    step, elapsed = 0, 0.0
    if latest_path.exists():
        record = load_checkpoint(latest_path, expected_kind=METACONTROLLER_KIND)
        check_same_config(latest_path, record, config_dict, "MetacontrollerTrainConfig", ADDED_CONFIG_FIELDS)
        check_same_inputs(latest_path, record, inputs)
        load_model_state(metacontroller, record["model"], latest_path)
        if config.cotrain:
            load_model_state(base_model, record["base_model"], latest_path)
        optimizer.load_state_dict(record["optimizer"])
        set_generator_state(batch_rng, record["batch_rng"])
        set_generator_state(noise, record["noise"])
        step, elapsed = record["step"], record["elapsed_s"]
    log.truncate_after(step)

    def checkpoint(path: Path, step: int, elapsed: float) -> None:
        payload = {
            "kind": METACONTROLLER_KIND, "model": metacontroller.state_dict(), "optimizer": optimizer.state_dict(),
            "step": step, "config": config_dict, "batch_rng": generator_state(batch_rng),
            "noise": generator_state(noise), "elapsed_s": elapsed, **inputs,
        }
        if config.cotrain:
            payload["base_model"] = base_model.state_dict()
            payload["base_model_config"] = base_model_config_to_dict(base_model.config)
        save_checkpoint(path, payload)

    lower_residuals = None if config.cotrain else LowerResiduals(base_model, dataset, layer,
                                                                  max_bytes=residual_table_max_bytes)

    def train_step(step: int) -> dict[str, torch.Tensor]:
        indices = sampler.sample(batch_rng, config.batch_size)
        batch = batch_to_device(batch_tensors(dataset, indices), device)
        if lower_residuals is None:  # co-training: the lower blocks learn too
            residual = base_model.forward_lower(batch["observations"], layer)  # (B, T, W)
        else:
            residual = lower_residuals(indices, batch)  # (B, T, W), computed once for the frozen model
        output = metacontroller(residual, batch["mask"], generator=noise)
        nll = base_model.action_nll_per_step(base_model.forward_upper(output.controlled, layer), batch["actions"])  # (B, T)
        losses = metacontroller_loss(nll, batch["mask"], output, kl_weight_at(step, config))
        return apply_gradients(optimizer, losses)

    step, elapsed = run_training_loop(
        train_step, step=step, total_steps=config.train_steps, stop_after=stop_after, elapsed=elapsed,
        window_keys=METRIC_FIELDS[1:-1], log_every=config.log_every, log=log, checkpoint=checkpoint,
        latest_path=latest_path, checkpoint_every=config.checkpoint_every, desc="metacontroller", progress=progress,
        postfix={"nll": "action_nll", "kl": "kl", "switches": "switches_per_episode"},
    )
    if step < config.train_steps:
        return latest_path
    checkpoint(final_path, step, elapsed)
    return final_path
