"""Metacontroller → switching analysis → internal RL → rate–distortion sweep → report (grid or ant).

``python -m agents.internal_rl_study --preset default --base-model runs/grid_default/base_model/model.pt
--dstar runs/grid_default/data_Dstar.npz`` runs SPEC A§5–6 end to end from a pretrained base
model and writes::

    results/internal_rl_<preset>/
    ├── report.md             switching scores, internal-RL success per seed, episodes to 50%/80%,
    │                         wall times, rollout throughput, rate–distortion table, distortion
    │                         references (per-task vs per-subgoal ground-truth controllers)
    ├── results.json          every number in the report
    ├── switching.png         β_t strips with the true boundaries, and the β histogram
    ├── learning_curve.png    success vs episodes: median and 25–75% band over seeds
    └── rate_distortion.png   KL vs action NLL per α, frozen vs co-trained (paper Fig. 7)

Each stage caches its result under the run directory, and every trainer resumes from its own
checkpoints, so an interrupted study continues where it stopped.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from agents.base_model_study import StageCache
from agents.checkpoints import module_fingerprint
from agents.controllers import (
    ANT_CONTROLLER_PRESETS,
    CONTROLLER_FORMS,
    CONTROLLER_PRESETS,
    ControllerConfig,
    controlled_action_nll,
    load_subgoal_controllers,
    relabel_with_task_ids,
    train_subgoal_controllers,
)
from agents.internal_rl import (
    ANT_INTERNAL_RL_PRESETS, INTERNAL_RL_PRESETS, InternalRLConfig, learned_from, train_internal_rl,
)
from agents.metacontroller import metacontroller_loss
from agents.models.controller import freeze
from agents.models.base_models import BaseModel
from agents.pretrain import batch_tensors, load_base_model
from agents.rollout_throughput import measure_internal_rl_throughput
from agents.switching_analysis import collect_betas, plot_switching, switching_scores
from agents.train_metacontroller import (
    ANT_METACONTROLLER_PRESETS,
    METACONTROLLER_PRESETS,
    MetacontrollerTrainConfig,
    load_cotrained_base_model,
    load_metacontroller,
    train_metacontroller,
)
from agents.training_utils import (
    CsvLog, check_non_negative_ints, check_positive_ints, machine_description, resolve_device, set_threads,
    write_text_atomic,
)
from hier_envs.experts.ant_expert import evaluate_ant_expert
from hier_envs.datasets import EpisodeDataset, generate_ant_dataset, generate_grid_dataset, load_dataset, save_dataset


@dataclass(frozen=True)
class InternalRLStudyConfig:
    """Everything one internal-RL study runs (presets SPEC B5)."""

    metacontroller: MetacontrollerTrainConfig
    """The metacontroller used for internal RL (its α is the chosen one)."""
    rl: InternalRLConfig
    """Internal-RL hyperparameters."""
    rl_seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    """Independent internal-RL runs."""
    sweep_kl_weights: tuple[float, ...] = (0.0, 0.05, 0.1, 0.17, 0.3, 0.5, 1.0)
    """α values of the rate–distortion sweep (SPEC A§5.2, Fig. 7)."""
    sweep_train_steps: int = 1500
    """Steps per sweep run (shorter than the main run, to fit the CPU budget)."""
    sweep_cotrain: bool = True
    """Also sweep the co-trained variant (base model trained jointly: the grid's from scratch, the
    ant's from the pretrained weights, C.4.2)."""
    heldout_episodes: int = 1000
    """Fresh D*-style episodes (ε = 0, another seed) for the switching analysis and the sweep."""
    throughput_envs: int = 256
    """Batch of envs for the cached-vs-re-encoding throughput comparison."""
    select_kl_weight: bool = True
    """Pick the main metacontroller's α as the frozen-sweep α with the best held-out switching F1
    (ties: the larger α, the lower rate). The paper selects α by median RL success (SPEC A§5.2,
    C.5.5); selecting on labelled held-out episodes is cheaper and is stated in the report."""
    env: str = "grid"
    """``"grid"`` or ``"ant"``: which held-out D*-style episodes are generated."""
    switch_tolerance: int = 1
    """A switch matches a subgoal boundary within this many steps (grid ±1; the ant's acceptance
    uses ±5, since a continuous ant crosses a cell border over several steps)."""
    expert_episodes: int = 200
    """Ant only: episodes of the expert on the post-training task, the normaliser of success."""
    reference_controllers: ControllerConfig | None = None
    """Fit ground-truth controllers at the controlled layer twice with this config, once per
    subgoal (switched at the true boundaries) and once per task (one controller held for the
    whole episode), and report their held-out action NLL next to the sweep: the distortion a
    subgoal-aligned metacontroller should reach, and the distortion at which a single code per
    episode already suffices. ``None`` skips them."""

    def __post_init__(self) -> None:
        if self.env not in ("grid", "ant"):
            raise ValueError(f"InternalRLStudyConfig.env must be 'grid' or 'ant', got {self.env!r}")
        expected_prefix = "HierAnt" if self.env == "ant" else "HierGrid"
        if not self.rl.env_id.startswith(expected_prefix):
            raise ValueError(f"InternalRLStudyConfig.rl.env_id {self.rl.env_id!r} is not a {self.env} env")
        check_positive_ints(self, ("sweep_train_steps", "heldout_episodes", "throughput_envs", "expert_episodes"))
        check_non_negative_ints(self, ("switch_tolerance",))
        if not self.rl_seeds or any(isinstance(seed, bool) or not isinstance(seed, int) or seed < 0
                                    for seed in self.rl_seeds):
            raise ValueError(f"InternalRLStudyConfig.rl_seeds must be non-negative ints, got {self.rl_seeds!r}")
        if any(isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0 <= alpha < float("inf")
               for alpha in self.sweep_kl_weights):
            raise ValueError(f"InternalRLStudyConfig.sweep_kl_weights must be finite numbers >= 0, "
                             f"got {self.sweep_kl_weights!r}")
        if self.select_kl_weight and not self.sweep_kl_weights:
            raise ValueError("InternalRLStudyConfig.select_kl_weight needs a rate–distortion sweep (sweep_kl_weights)")


INTERNAL_RL_STUDY_PRESETS: dict[str, InternalRLStudyConfig] = {
    "smoke": InternalRLStudyConfig(
        METACONTROLLER_PRESETS["smoke"], INTERNAL_RL_PRESETS["smoke"], rl_seeds=(0, 1), sweep_kl_weights=(0.1, 1.0),
        sweep_train_steps=10, heldout_episodes=30, throughput_envs=16, reference_controllers=CONTROLLER_PRESETS["smoke"],
    ),
    "default": InternalRLStudyConfig(METACONTROLLER_PRESETS["default"], INTERNAL_RL_PRESETS["default"],
                                     reference_controllers=CONTROLLER_PRESETS["default"]),
    "paper": InternalRLStudyConfig(
        METACONTROLLER_PRESETS["paper"], INTERNAL_RL_PRESETS["paper"], sweep_train_steps=64_000, heldout_episodes=5000,
        reference_controllers=CONTROLLER_PRESETS["paper"],
    ),
}

ANT_INTERNAL_RL_STUDY_PRESETS: dict[str, InternalRLStudyConfig] = {
    "smoke": InternalRLStudyConfig(
        ANT_METACONTROLLER_PRESETS["smoke"], ANT_INTERNAL_RL_PRESETS["smoke"], rl_seeds=(0,), sweep_kl_weights=(),
        sweep_cotrain=False, heldout_episodes=2, throughput_envs=2, select_kl_weight=False, env="ant",
        switch_tolerance=5, expert_episodes=2,
    ),
    "default": InternalRLStudyConfig(
        ANT_METACONTROLLER_PRESETS["default"], ANT_INTERNAL_RL_PRESETS["default"], sweep_kl_weights=(),
        sweep_cotrain=False, heldout_episodes=100, throughput_envs=8, select_kl_weight=False, env="ant",
        switch_tolerance=5,
    ),
    "paper": InternalRLStudyConfig(
        ANT_METACONTROLLER_PRESETS["paper"], ANT_INTERNAL_RL_PRESETS["paper"], sweep_train_steps=32_000,
        heldout_episodes=1000, env="ant", switch_tolerance=5, reference_controllers=ANT_CONTROLLER_PRESETS["paper"],
    ),
}
"""Ant studies (SPEC A§5–6 on HierAnt, issue #7): no rate–distortion sweep and no distortion
references at ``default`` (one ant metacontroller costs ~15 CPU minutes), α fixed at the
metacontroller preset's value."""


def select_kl_weight(sweep: dict[str, Any]) -> float:
    """α of the frozen sweep run with the best held-out F1; the larger α on ties."""
    frozen = [row for row in sweep.values() if row["mode"] == "frozen"]
    if not frozen:
        raise ValueError("the rate–distortion sweep has no frozen runs to select α from")
    return max(frozen, key=lambda row: (round(row["f1"], 3), row["kl_weight"]))["kl_weight"]


def episodes_to_reach(episodes: np.ndarray, success: np.ndarray, threshold: float) -> float | None:
    """First episode count at which the success rate reaches ``threshold`` (None if never)."""
    reached = np.flatnonzero(success >= threshold)
    return float(episodes[reached[0]]) if len(reached) else None


@torch.no_grad()
def heldout_rate_distortion(
    base_model: BaseModel, metacontroller: Any, dataset: EpisodeDataset, layer: int, kl_weight: float
) -> dict[str, float]:
    """Action NLL (distortion) and KL (rate) on held-out episodes, with sampled codes as in training.

    NLL and KL are means over all valid steps, switches a mean over episodes, as in training
    (SPEC §9.2 item 5): each chunk of episodes weighs by its valid steps (or its episodes).
    """
    metacontroller.eval()
    indices = np.arange(dataset.n_episodes)
    generator = torch.Generator().manual_seed(0)
    sums = {"action_nll": 0.0, "kl": 0.0, "switches_per_episode": 0.0}
    total_steps = 0.0
    for start in range(0, len(indices), 256):
        batch = batch_tensors(dataset, indices[start : start + 256])
        residual = base_model.forward_lower(batch["observations"], layer)
        output = metacontroller(residual, batch["mask"], generator=generator)
        nll = base_model.action_nll_per_step(base_model.forward_upper(output.controlled, layer), batch["actions"])
        losses = metacontroller_loss(nll, batch["mask"], output, kl_weight)
        steps = float(batch["mask"].sum())
        total_steps += steps
        sums["action_nll"] += float(losses["action_nll"]) * steps
        sums["kl"] += float(losses["kl"]) * steps
        sums["switches_per_episode"] += float(losses["switches_per_episode"]) * len(batch["mask"])
    return {"action_nll": sums["action_nll"] / total_steps, "kl": sums["kl"] / total_steps,
            "switches_per_episode": sums["switches_per_episode"] / len(indices)}


def distortion_references(
    base_model: BaseModel, dstar: EpisodeDataset, heldout: EpisodeDataset, layer: int, config: ControllerConfig,
    progress: bool = True, subgoal_controllers_path: Path | None = None, device: str | torch.device = "cpu",
) -> dict[str, Any]:
    """Held-out action NLL of the frozen model unsteered, steered by per-task constant controllers
    and by per-subgoal controllers switched at the true boundaries (SPEC A§4.2 controllers, both
    fitted on D* with ``config``).

    They bracket what the metacontroller's sweep can find (SPEC A§5.4): its action NLL at the
    per-task value means one code per episode is enough, and only a distortion near the
    per-subgoal value needs switching. Their gap is the most that subgoal-aligned switching can
    earn on this backbone: if it is small, the rate term makes one code per episode the optimum.

    ``subgoal_controllers_path``: per-subgoal controllers already fitted by
    ``agents.base_model_study`` (``runs/<study>/controllers/layer_<L>.pt``) are reused instead of
    refitted; they must carry this ``config``, ``layer`` and base model, or ``CheckpointError``
    names the file. ``device`` is where controllers are fitted; the NLLs are computed on the CPU.
    """
    tasks = np.unique(np.concatenate([dstar.episode_tasks, heldout.episode_tasks]), axis=0)
    references: dict[str, Any] = {"unsteered": controlled_action_nll(base_model, None, heldout, layer)}
    for name, train, test, n_labels in (
        ("per_subgoal", dstar, heldout, config.n_subgoals),
        ("per_task", relabel_with_task_ids(dstar, tasks), relabel_with_task_ids(heldout, tasks), len(tasks)),
    ):
        fit_config = dataclasses.replace(config, n_subgoals=n_labels)
        if name == "per_subgoal" and subgoal_controllers_path is not None:
            controllers = load_subgoal_controllers(subgoal_controllers_path, base_model.config.width,
                                                   expect_config=fit_config, expect_layer=layer,
                                                   expect_base_model=base_model)
            final_train_nll, source = None, str(subgoal_controllers_path)
        else:
            controllers, losses = train_subgoal_controllers(base_model, train, layer, fit_config, progress=progress,
                                                            device=device)
            final_train_nll, source = float(np.mean(losses[-20:])), "fitted"
        references[name] = {"action_nll": controlled_action_nll(base_model, controllers, test, layer),
                            "controllers": n_labels, "final_train_nll": final_train_nll, "source": source}
    references["train_steps"] = config.train_steps
    return references


def run_internal_rl_study(
    config: InternalRLStudyConfig, base_model_path: Path, dstar_path: Path, run_dir: Path, out_dir: Path,
    progress: bool = True, subgoal_controllers_path: Path | None = None, device: str | torch.device = "cpu",
) -> dict[str, Any]:
    """Run (or resume) every stage and write the report; ``subgoal_controllers_path``: see
    :func:`distortion_references`. ``device`` is where the metacontrollers train (the sweep's and
    the main one; Table A9's 64,000 steps at batch 512 want a GPU) and the reference controllers
    are fitted; the analysis and the internal-RL rollouts run on the CPU."""
    device = resolve_device(device)
    set_threads(config.metacontroller.num_threads)
    run_dir.mkdir(parents=True, exist_ok=True)
    stages = StageCache(run_dir / "stages")
    base_model = freeze(load_base_model(base_model_path))
    layer = base_model.config.controlled_layer
    dstar = load_dataset(dstar_path)
    heldout_path = run_dir / "data_Dstar_heldout.npz"
    if not heldout_path.exists():
        heldout_seed = int(dstar.metadata["generator"]["seed"]) + 1000
        if config.env == "ant":
            heldout_data = generate_ant_dataset(config.heldout_episodes, False, heldout_seed, progress=progress)
        else:
            heldout_data = generate_grid_dataset(config.heldout_episodes, 0.0, heldout_seed, progress=progress)
        save_dataset(heldout_data, heldout_path)
    heldout = load_dataset(heldout_path)

    # 1. rate–distortion sweep with the frozen base model (SPEC A§5.4, Fig. 7), short runs per α
    provenance = {"base_model": module_fingerprint(base_model), "dstar_sha256": dstar.sha256,
                  "heldout_sha256": heldout.sha256}
    sweep_settings = {**provenance, "switch_tolerance": config.switch_tolerance,  # the sweep's runs, α aside
                      "metacontroller": sweep_metacontroller_config(config.metacontroller, 0.0, config.sweep_train_steps,
                                                                    cotrain=False).to_dict()}
    sweep = stages.get("rate_distortion", sweep_settings) or {}

    def run_sweep(mode: str) -> None:
        for kl_weight in config.sweep_kl_weights:
            key = f"{mode}/{kl_weight}"
            if key in sweep:
                continue
            sweep_config = sweep_metacontroller_config(config.metacontroller, kl_weight, config.sweep_train_steps,
                                                       cotrain=mode == "cotrained",
                                                       cotrain_init="pretrained" if config.env == "ant" else "random")
            path = train_metacontroller(sweep_config, base_model, dstar, run_dir / "sweep" / mode / f"alpha_{kl_weight}",
                                        progress=progress, device=device)
            model = freeze(load_cotrained_base_model(path)) if mode == "cotrained" else base_model
            sweep_mc = freeze(load_metacontroller(path, model.config.width, layer))
            scores = switching_scores(collect_betas(model, sweep_mc, heldout, np.arange(heldout.n_episodes), layer),
                                      tolerance=config.switch_tolerance)
            sweep[key] = {
                "mode": mode, "kl_weight": kl_weight,
                **heldout_rate_distortion(model, sweep_mc, heldout, layer, kl_weight),
                "f1": scores["f1"], "switches_per_episode_thresholded": scores["switches_per_episode"],
            }
            stages.put("rate_distortion", sweep, sweep_settings)

    run_sweep("frozen")

    references = None
    if config.reference_controllers is not None:
        reference_settings = {**provenance, "controllers": config.reference_controllers.settings(),
                              "subgoal_controllers": None if subgoal_controllers_path is None else str(subgoal_controllers_path)}
        references = stages.get("distortion_references", reference_settings)
        if references is None:
            references = stages.put("distortion_references", distortion_references(
                base_model, dstar, heldout, layer, config.reference_controllers, progress=progress,
                subgoal_controllers_path=subgoal_controllers_path, device=device), reference_settings)

    # 2. the metacontroller used for RL (SPEC A§5): α from the frozen sweep unless fixed
    main_config = config.metacontroller
    if config.select_kl_weight:
        main_config = dataclasses.replace(main_config, metacontroller=dataclasses.replace(
            main_config.metacontroller, kl_weight=select_kl_weight(sweep)))
    mc_path = train_metacontroller(main_config, base_model, dstar,
                                   run_dir / f"metacontroller_alpha_{main_config.metacontroller.kl_weight}",
                                   progress=progress, device=device)
    metacontroller = freeze(load_metacontroller(mc_path, base_model.config.width, layer))

    # 3. switching analysis on held-out episodes (SPEC A§5.4)
    episodes = collect_betas(base_model, metacontroller, heldout, np.arange(heldout.n_episodes), layer)
    switching = switching_scores(episodes, tolerance=config.switch_tolerance)
    out_dir.mkdir(parents=True, exist_ok=True)
    plot_switching(episodes, switching, out_dir / "switching.png")

    # the paper normalises ant success by its expert's own post-training success (SPEC A§2.3)
    expert = None
    if config.env == "ant":
        expert_settings = {"env_id": config.rl.env_id, "episodes": config.expert_episodes, "seed": 10_000}
        expert = stages.get("expert", expert_settings)
        if expert is None:
            report = evaluate_ant_expert(config.rl.env_id, config.expert_episodes, seed=10_000)
            expert = stages.put("expert", {key: report[key] for key in ("success_rate", "episodes", "seed")},
                                expert_settings)

    # 4. internal RL, one run per seed (SPEC A§6)
    rl_runs: dict[str, Any] = {}
    for seed in config.rl_seeds:
        rl_config = dataclasses.replace(config.rl, seed=seed)
        seed_dir = run_dir / "internal_rl" / f"seed_{seed}"
        train_internal_rl(rl_config, base_model, metacontroller, seed_dir, progress=progress)
        curve = CsvLog(seed_dir / "learning_curve.csv", ["update"], "update").read()
        # each batch's success at the episodes its policy had learned from, as the benchmark's curves
        episodes_axis = np.array([episodes for episodes, _ in learned_from(curve)])
        success = np.array([float(row["success_rate"]) for row in curve])
        smoothed = _moving_average(success, 5)
        rl_runs[str(seed)] = {
            "curve": curve,
            "final_success_rate": float(np.mean(success[-5:])),
            "episodes_to_50": episodes_to_reach(episodes_axis, smoothed, 0.5),
            "episodes_to_80": episodes_to_reach(episodes_axis, smoothed, 0.8),
            "wall_seconds": float(curve[-1]["elapsed_s"]),
            "env_steps": int(float(curve[-1]["env_steps"])),
        }

    # 5. the co-trained half of the sweep (base model trained jointly, C.4.2)
    if config.sweep_cotrain:
        run_sweep("cotrained")

    # 6. rollout throughput: cached vs re-encoding (SPEC B4)
    throughput_settings = {**provenance, "metacontroller": module_fingerprint(metacontroller),
                           "env_id": config.rl.env_id, "num_envs": config.throughput_envs,
                           "greedy_actions": config.rl.greedy_actions}
    throughput = stages.get("throughput", throughput_settings)
    if throughput is None:
        throughput = stages.put(
            "throughput",
            measure_internal_rl_throughput(base_model, metacontroller, config.rl.env_id, config.throughput_envs, seed=0,
                                           greedy_actions=config.rl.greedy_actions),
            throughput_settings,
        )

    results = {
        "config": dataclasses.asdict(config),
        "kl_weight": main_config.metacontroller.kl_weight,
        "switching": switching,
        "expert": expert,
        "internal_rl": rl_runs,
        "rate_distortion": sweep,
        "distortion_references": references,
        "throughput": throughput,
        "dstar": dstar.provenance(),
        "versions": {"python": platform.python_version(), "torch": torch.__version__, "numpy": np.__version__},
        "machine": machine_description(),
        "command": " ".join(sys.argv),
    }
    write_internal_rl_report(results, out_dir)
    return results


def _moving_average(values: np.ndarray, window: int) -> np.ndarray:
    if len(values) == 0:
        return values
    kernel = np.ones(min(window, len(values))) / min(window, len(values))
    padded = np.concatenate([np.full(len(kernel) - 1, values[0]), values])
    return np.convolve(padded, kernel, mode="valid")


def write_internal_rl_report(results: dict[str, Any], out_dir: Path) -> None:
    """Markdown, JSON and PNGs from ``results``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out_dir / "results.json", json.dumps(results, indent=2))
    switching, runs, sweep, throughput = (
        results["switching"], results["internal_rl"], results["rate_distortion"], results["throughput"]
    )
    finals = [run["final_success_rate"] for run in runs.values()]
    alpha = results["kl_weight"]
    env_id = results["config"]["rl"]["env_id"]
    ant = results["config"].get("env") == "ant"
    expert = results.get("expert")
    lines = [
        f"# Internal RL on the {'ant' if ant else 'grid'} ({env_id})",
        "",
        f"Command: `{results['command']}`",
        "",
        f"## Switching (held-out D*, α = {alpha}, β ≥ 0.5, ±{switching['tolerance']} steps)",
        "",
        "α is the frozen-sweep value with the best held-out switching F1 (the paper selects α by RL success)."
        if results["config"]["select_kl_weight"] else "α fixed by the configuration.",
        "",
        "| precision | recall | F1 | switches / episode | true boundaries / episode | β in [0, .05] ∪ [.95, 1] | episodes |",
        "|---|---|---|---|---|---|---|",
        f"| {switching['precision']:.3f} | {switching['recall']:.3f} | {switching['f1']:.3f} | "
        f"{switching['switches_per_episode']:.2f} | {switching['boundaries_per_episode']:.2f} | "
        f"{switching['fraction_beta_extreme']:.3f} | {switching['episodes']} |",
        "",
        f"## Internal RL (sparse reward, unseen {4 if ant else 12}-colour task)",
        "",
        "Success rate = mean of the last 5 training batches (on-policy samples). Episodes to 50% / 80% use a",
        "5-batch moving average.",
        "",
        "| seed | final success | episodes to 50% | episodes to 80% | env steps | wall time (min) |",
        "|---|---|---|---|---|---|",
    ]
    for seed, run in runs.items():
        lines.append(
            f"| {seed} | {run['final_success_rate']:.3f} | {_fmt(run['episodes_to_50'])} | {_fmt(run['episodes_to_80'])} | "
            f"{run['env_steps']} | {run['wall_seconds'] / 60:.1f} |"
        )
    if finals:
        lines.append(f"| **median** | **{float(np.median(finals)):.3f}** | | | | |")
    if expert is not None:
        normalised = f"{float(np.median(finals)) / expert['success_rate']:.3f}" if finals and expert["success_rate"] > 0 else "n/a"
        lines += ["", f"Expert success on {env_id}: {expert['success_rate']:.3f} ({expert['episodes']} episodes); "
                      f"median normalised internal-RL success (paper's Fig. 8b convention): {normalised}."]
    cached, reencoding = throughput["cached"], throughput["reencoding"]
    lines += [
        "",
        f"## Rollout throughput ({throughput['num_envs']} envs, {throughput['threads']} threads, one collected batch each)",
        "",
        "| stepper | env steps/s |",
        "|---|---|",
        f"| {'recurrent state' if ant else 'KV cache'} | {cached['env_steps_per_s']:.0f} |",
        f"| re-encode full context | {reencoding['env_steps_per_s']:.0f} |",
        f"| speed-up | {throughput['speedup']:.1f}× |",
        "",
        "## Rate–distortion sweep (held-out D*)",
        "",
        "| base model | α | action NLL | KL (nats/step) | switches / episode (β ≥ 0.5) | F1 |",
        "|---|---|---|---|---|---|",
    ]
    for row in sorted(sweep.values(), key=lambda r: (r["mode"], r["kl_weight"])):
        lines.append(
            f"| {row['mode']} | {row['kl_weight']} | {row['action_nll']:.3f} | {row['kl']:.3f} | "
            f"{row['switches_per_episode_thresholded']:.2f} | {row['f1']:.3f} |"
        )
    references = results.get("distortion_references")
    if references is not None:
        lines += [
            "",
            f"## Distortion references (held-out D*, ground-truth-label controllers, {references['train_steps']} steps each)",
            "",
            "Per-subgoal controllers switched at the true boundaries are what a subgoal-aligned metacontroller can",
            "reach; per-task controllers are held for the whole episode (one code, no switching). A sweep NLL at",
            "the per-task value needs no switch; the gap between the two is what switching can earn.",
            "",
            "| steering | controllers | action NLL |",
            "|---|---|---|",
            f"| none (base model) | 0 | {references['unsteered']:.3f} |",
            f"| per task, held constant | {references['per_task']['controllers']} | {references['per_task']['action_nll']:.3f} |",
            f"| per subgoal, switched at boundaries | {references['per_subgoal']['controllers']} | "
            f"{references['per_subgoal']['action_nll']:.3f} |",
        ]
        source = references["per_subgoal"].get("source", "fitted")
        if source != "fitted":
            lines += ["", f"The per-subgoal controllers are the base-model study's, reused from `{source}`."]
    write_text_atomic(out_dir / "report.md", "\n".join(lines) + "\n")

    if runs:
        figure, axis = plt.subplots(figsize=(5.5, 3.5))
        curves = [run["curve"] for run in runs.values()]
        length = min(len(curve) for curve in curves)
        stacked = np.stack([_moving_average(np.array([float(r["success_rate"]) for r in curve[:length]]), 5)
                            for curve in curves])  # (seeds, updates)
        x = np.array([episodes for episodes, _ in learned_from(curves[0][:length])])
        axis.plot(x, np.median(stacked, 0), color="tab:blue", label=f"internal RL (median of {len(curves)} seeds)")
        axis.fill_between(x, np.percentile(stacked, 25, 0), np.percentile(stacked, 75, 0), color="tab:blue", alpha=0.25)
        axis.set(xlabel="training episodes before the batch", ylabel="batch success rate", ylim=(-0.02, 1.02),
                 title=f"{env_id} (sparse reward)")
        axis.legend()
        figure.tight_layout()
        figure.savefig(out_dir / "learning_curve.png", dpi=120)
        plt.close(figure)

    if sweep:
        figure, axis = plt.subplots(figsize=(5.5, 3.5))
        for mode, color in (("frozen", "tab:blue"), ("cotrained", "tab:orange")):
            rows = sorted((r for r in sweep.values() if r["mode"] == mode), key=lambda r: r["kl_weight"])
            if not rows:
                continue
            axis.plot([r["action_nll"] for r in rows], [r["kl"] for r in rows], marker="o", color=color, label=mode)
            for r in rows:
                axis.annotate(f"α={r['kl_weight']}, {r['switches_per_episode_thresholded']:.1f} sw",
                              (r["action_nll"], r["kl"]), fontsize=6)
        if references is not None:
            for key, style, label in (("per_task", ":", "per-task controllers"),
                                      ("per_subgoal", "--", "per-subgoal controllers")):
                axis.axvline(references[key]["action_nll"], color="grey", linestyle=style, label=label)
        axis.set(xlabel="action NLL (distortion)", ylabel="KL (rate, nats/step)", title="Rate–distortion")
        axis.legend()
        figure.tight_layout()
        figure.savefig(out_dir / "rate_distortion.png", dpi=120)
        plt.close(figure)


def _fmt(value: float | None) -> str:
    return "not reached" if value is None else f"{value:,.0f}"


def sweep_metacontroller_config(main: MetacontrollerTrainConfig, kl_weight: float, train_steps: int,
                                cotrain: bool, cotrain_init: str = "random") -> MetacontrollerTrainConfig:
    """One rate–distortion sweep run (SPEC A§5.4, Fig. 7): the main metacontroller's settings at a
    constant α (any early-α phase and ramp of the main run dropped), shorter, frozen or co-trained
    (from ``cotrain_init``: C.4.2 co-trains the gridworld's base model from random weights and the
    ant's from the pretrained ones)."""
    return dataclasses.replace(
        main, train_steps=train_steps, early_kl_weight=None, early_kl_steps=0, kl_warmup_steps=0, cotrain=cotrain,
        cotrain_init=cotrain_init,
        metacontroller=dataclasses.replace(main.metacontroller, kl_weight=kl_weight),
        checkpoint_every=max(1, train_steps // 5),
    )


def parse_study_args(argv: list[str] | None = None) -> tuple[argparse.Namespace, InternalRLStudyConfig]:
    """The command line and the study config it selects: the preset with the overrides applied."""
    parser = argparse.ArgumentParser(description="Metacontroller + internal RL study (SPEC A§5-6).")
    parser.add_argument("--env", choices=("grid", "ant"), default="grid")
    parser.add_argument("--preset", choices=sorted(INTERNAL_RL_STUDY_PRESETS), default="default")
    parser.add_argument("--rl-seeds", type=int, nargs="*", default=None, help="override the preset's internal-RL seeds")
    parser.add_argument("--base-model", required=True, help="pretrained model.pt")
    parser.add_argument("--dstar", required=True, help="dataset D* (ε = 0)")
    parser.add_argument("--run-dir", default=None, help="default runs/internal_rl_<preset>")
    parser.add_argument("--out", default=None, help="default results/internal_rl_<preset>")
    parser.add_argument("--kl-weight", type=float, default=None,
                        help="fix α of the main metacontroller (no selection from the rate–distortion sweep)")
    parser.add_argument("--switch-lr-scale", type=float, default=None,
                        help="switching unit's learning rate relative to the rest (MetacontrollerTrainConfig."
                             "switch_learning_rate_scale; 1.0 = the paper), for the main metacontroller and the sweep")
    parser.add_argument("--early-kl-weight", type=float, default=None,
                        help="α for the main metacontroller's first --early-kl-steps steps (MetacontrollerTrainConfig."
                             "early_kl_weight; not in the paper)")
    parser.add_argument("--early-kl-steps", type=int, default=None, help="length of the --early-kl-weight phase")
    parser.add_argument("--constant-kl", action="store_true",
                        help="drop the preset's early-α phase and α ramp: one α for the whole run, as the paper")
    parser.add_argument("--metacontroller-steps", type=int, default=None,
                        help="override the main metacontroller's training steps (the preset's train_steps)")
    parser.add_argument("--subgoal-controllers", default=None,
                        help="per-subgoal controllers of agents.base_model_study at the controlled layer "
                             "(runs/<study>/controllers/layer_<L>.pt), reused for the distortion references")
    parser.add_argument("--controller-form", choices=CONTROLLER_FORMS, default=None,
                        help="override the reference controllers' parameterisation: hypernetwork (the paper's, "
                             "default) or lookup (one matrix per label; the distortion references committed before "
                             "session 29)")
    parser.add_argument("--device", default="cpu",
                        help="torch device for metacontroller and reference-controller training: cpu (default), cuda, "
                             "cuda:N or mps; analysis and internal RL run on the CPU. A run may resume on another device")
    args = parser.parse_args(argv)
    try:
        resolve_device(args.device)
    except ValueError as error:
        parser.error(str(error))
    config = (INTERNAL_RL_STUDY_PRESETS if args.env == "grid" else ANT_INTERNAL_RL_STUDY_PRESETS)[args.preset]
    if args.rl_seeds is not None:
        config = dataclasses.replace(config, rl_seeds=tuple(args.rl_seeds))
    if args.controller_form is not None and config.reference_controllers is not None:
        config = dataclasses.replace(config, reference_controllers=dataclasses.replace(
            config.reference_controllers, form=args.controller_form))
    if (args.early_kl_weight is None) != (args.early_kl_steps is None):
        parser.error("--early-kl-weight and --early-kl-steps go together")
    if args.constant_kl and args.early_kl_weight is not None:
        parser.error("--constant-kl drops the early-α phase; it cannot be combined with --early-kl-weight")
    overrides: dict[str, Any] = {}  # one replace, so the fields are validated together
    if args.kl_weight is not None:
        overrides["metacontroller"] = dataclasses.replace(config.metacontroller.metacontroller, kl_weight=args.kl_weight)
    if args.switch_lr_scale is not None:
        overrides["switch_learning_rate_scale"] = args.switch_lr_scale
    if args.metacontroller_steps is not None:
        overrides["train_steps"] = args.metacontroller_steps
    if args.constant_kl:
        overrides.update(early_kl_weight=None, early_kl_steps=0, kl_warmup_steps=0)
    if args.early_kl_weight is not None:
        overrides.update(early_kl_weight=args.early_kl_weight, early_kl_steps=args.early_kl_steps)
    try:
        config = dataclasses.replace(config, metacontroller=dataclasses.replace(config.metacontroller, **overrides),
                                     # a given α is used as given, not replaced by the sweep's choice
                                     select_kl_weight=config.select_kl_weight and args.kl_weight is None)
    except (TypeError, ValueError) as error:
        parser.error(str(error))
    return args, config


def main(argv: list[str] | None = None) -> None:
    args, config = parse_study_args(argv)
    prefix = "internal_rl" if args.env == "grid" else "internal_rl_ant"
    run_dir = Path(args.run_dir or f"runs/{prefix}_{args.preset}")
    out_dir = Path(args.out or f"results/{prefix}_{args.preset}")
    run_internal_rl_study(config, Path(args.base_model), Path(args.dstar), run_dir, out_dir,
                          subgoal_controllers_path=Path(args.subgoal_controllers) if args.subgoal_controllers else None,
                          device=args.device)
    print((out_dir / "report.md").read_text())


if __name__ == "__main__":
    main()
