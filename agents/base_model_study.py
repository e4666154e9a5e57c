"""Base-model study: datasets → pretraining → probes → ground-truth controllers → report.

``python -m agents.base_model_study [--env ant] --preset default`` runs SPEC A§3–4 end to end
for the grid (causal transformer, low-rank controllers, Fig. 3/4a) or the ant (Hawk SSM, full
linear controllers, Fig. 4b) and writes a results folder::

    results/base_model_<preset>/       (grid; the ant's is results/base_model_ant_<preset>/)
    ├── report.md          tables: probe accuracy per layer × checkpoint, controller success per
    │                      layer, unsteered success, pretraining wall time
    ├── results.json       every number in the report
    ├── probes.png         probe accuracy vs layer, one line per checkpoint (paper Fig. 3/A1)
    ├── controllers.png    post-training success vs insertion layer (paper Fig. 4)
    └── pretraining.png    training / validation action NLL

Every stage caches its output in the run directory (datasets, checkpoints, ``stages/*.json``),
so an interrupted study resumes where it stopped and a finished one only rewrites the report.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from agents.checkpoints import CheckpointError, load_checkpoint, module_fingerprint
from agents.controllers import (
    ANT_CONTROLLER_PRESETS,
    CONTROLLER_FORMS,
    CONTROLLER_PRESETS,
    ControllerConfig,
    evaluate_subgoal_controllers,
    load_subgoal_controllers,
    save_subgoal_controllers,
    train_subgoal_controllers,
)
from agents.models.controller import freeze
from agents.pretrain import ANT_PRETRAIN_PRESETS, LR_SCHEDULES, PRECISIONS, PRETRAIN_PRESETS, PretrainConfig, load_base_model, pretrain
from agents.probes import PROBE_PRESETS, ProbeConfig, probe_model
from agents.rollouts import evaluate_policy
from agents.training_utils import CsvLog, check_numbers, machine_description, resolve_device, set_threads, tuples_to_lists, write_text_atomic
from hier_envs.experts.ant_expert import evaluate_ant_expert
from hier_envs.datasets import EpisodeDataset, generate_ant_dataset, generate_grid_dataset, load_dataset, save_dataset
from hier_envs.tasks import grid_composition_task_sets


@dataclass(frozen=True)
class GridDataConfig:
    """Expert datasets D and D* (SPEC A§2.3, B3)."""

    d_episodes: int = 50_000
    """Episodes in D (pretraining); the paper gives no size (SPEC §9.1 item 1)."""
    d_epsilon: float = 0.0
    """Expert noise in D: the paper's default ε = 0 (SPEC A§2.3; Fig. A2 studies [0, 0.2]). Until
    session 33 the ``default`` preset used 0.1; on the same 6,000-step backbone ε = 0 gave 3–6×
    the layer-3 ground-truth controllers' success on ``HierGrid-v0`` and kept gaining with longer
    pretraining where ε = 0.1 did not (results/base_model_default_eps0/NOTE.md, longer/NOTE.md)."""
    dstar_episodes: int = 10_000
    """Episodes in D* (ε = 0), for controllers and the metacontroller."""
    seed: int = 1

    def __post_init__(self) -> None:
        check_numbers(self, {"d_epsilon": "[0, 1]"})  # the expert's probability of a random action


DATA_PRESETS: dict[str, GridDataConfig] = {
    "smoke": GridDataConfig(d_episodes=300, dstar_episodes=100),
    "default": GridDataConfig(d_episodes=300_000),
    "paper": GridDataConfig(d_episodes=200_000, d_epsilon=0.0, dstar_episodes=50_000),  # SPEC A§2.3: ε = 0
}


@dataclass(frozen=True)
class AntDataConfig:
    """Ant expert datasets D (sampled torques) and D* (mean torques) (SPEC A§2.3, B3)."""

    d_episodes: int = 3000
    """Successful episodes in D (pretraining); the paper gives no size (SPEC §9.1 item 1)."""
    dstar_episodes: int = 1000
    """Successful episodes in D*, for controllers and the metacontroller."""
    seed: int = 1


ANT_DATA_PRESETS: dict[str, AntDataConfig] = {
    "smoke": AntDataConfig(d_episodes=4, dstar_episodes=3),
    "default": AntDataConfig(),
    "paper": AntDataConfig(d_episodes=20_000, dstar_episodes=5000),
}


@dataclass(frozen=True)
class StudyConfig:
    """Everything one base-model study runs (presets SPEC B5)."""

    data: GridDataConfig | AntDataConfig
    pretrain: PretrainConfig
    probes: ProbeConfig
    controllers: ControllerConfig
    controller_layers: tuple[int, ...] | None = None
    """Insertion layers to train controllers at; ``None`` means every layer 0..L."""
    eval_episodes: int = 1000
    """Post-training episodes per evaluation (SPEC acceptance: 1,000)."""
    eval_seed: int = 10_000
    eval_greedy: bool = False
    """Act with the action head's mode / mean instead of sampling (the ant evaluates the mean, as
    its expert's D* does)."""
    eval_batch_envs: int = 250
    """Environments stepped together in evaluation."""

    @property
    def env(self) -> str:
        """``"grid"`` or ``"ant"``, from the data config."""
        return "ant" if isinstance(self.data, AntDataConfig) else "grid"

    @property
    def env_ids(self) -> tuple[str, str]:
        """(post-training id, pretraining id)."""
        return ("HierAnt-v0", "HierAnt-Pretrain-v0") if self.env == "ant" else ("HierGrid-v0", "HierGrid-Pretrain-v0")

STUDY_PRESETS: dict[str, StudyConfig] = {
    name: StudyConfig(DATA_PRESETS[name], PRETRAIN_PRESETS[name], PROBE_PRESETS[name], CONTROLLER_PRESETS[name])
    for name in ("smoke", "default", "paper")
}
STUDY_PRESETS["smoke"] = dataclasses.replace(STUDY_PRESETS["smoke"], eval_episodes=40)

ANT_PROBE_PRESETS: dict[str, ProbeConfig] = {
    "smoke": PROBE_PRESETS["smoke"],
    "default": ProbeConfig(n_episodes=400),
    "paper": ProbeConfig(n_episodes=1000, train_steps=8000),
}
"""Ant probes see fewer episodes: an ant episode has about 3× the grid's steps, and residuals of
every layer are held in memory at once."""

ANT_STUDY_PRESETS: dict[str, StudyConfig] = {
    name: StudyConfig(
        ANT_DATA_PRESETS[name], ANT_PRETRAIN_PRESETS[name], ANT_PROBE_PRESETS[name], ANT_CONTROLLER_PRESETS[name],
        controller_layers=layers, eval_episodes=episodes, eval_greedy=True, eval_batch_envs=100,
    )
    for name, layers, episodes in (("smoke", (0, 1), 4), ("default", (0, 2, 4, 6, 8), 200), ("paper", None, 1000))
}
"""Ant studies (Fig. 4b): every other insertion layer at ``default`` (one controller fit costs
minutes on CPU), 200 post-training episodes each; ``paper`` uses Table A8 and every layer."""


def ensure_datasets(config: GridDataConfig | AntDataConfig, run_dir: Path, progress: bool = True) -> tuple[EpisodeDataset, EpisodeDataset]:
    """D and D* of the study's env, generated on first use (grid or ant by the config's type)."""
    if isinstance(config, AntDataConfig):
        return ensure_ant_datasets(config, run_dir, progress)
    return ensure_grid_datasets(config, run_dir, progress)


def ensure_ant_datasets(config: AntDataConfig, run_dir: Path, progress: bool = True) -> tuple[EpisodeDataset, EpisodeDataset]:
    """Load the ant D (sampled torques) and D* (mean torques) from ``run_dir``, generating them on first use."""
    return (
        _ensure_dataset(run_dir / "data_D.npz", {"episodes": config.d_episodes, "actions": "sampled", "seed": config.seed},
                        lambda: generate_ant_dataset(config.d_episodes, True, config.seed, progress=progress)),
        _ensure_dataset(run_dir / "data_Dstar.npz", {"episodes": config.dstar_episodes, "actions": "mean", "seed": config.seed + 1},
                        lambda: generate_ant_dataset(config.dstar_episodes, False, config.seed + 1, progress=progress)),
    )


def ensure_grid_datasets(config: GridDataConfig, run_dir: Path, progress: bool = True) -> tuple[EpisodeDataset, EpisodeDataset]:
    """Load D (ε = ``d_epsilon``) and D* (ε = 0) from ``run_dir``, generating them on first use."""
    return (
        _ensure_dataset(run_dir / "data_D.npz", {"episodes": config.d_episodes, "epsilon": config.d_epsilon, "seed": config.seed},
                        lambda: generate_grid_dataset(config.d_episodes, config.d_epsilon, config.seed, progress=progress)),
        _ensure_dataset(run_dir / "data_Dstar.npz", {"episodes": config.dstar_episodes, "epsilon": 0.0, "seed": config.seed + 1},
                        lambda: generate_grid_dataset(config.dstar_episodes, 0.0, config.seed + 1, progress=progress)),
    )


def _ensure_dataset(path: Path, expected: dict[str, Any], generate: Callable[[], EpisodeDataset]) -> EpisodeDataset:
    """Load ``path``, generating and saving it first if it is missing; ``ValueError`` if its recorded
    generator settings differ from ``expected`` (a run dir holds one configuration)."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        save_dataset(generate(), path)
    dataset = load_dataset(path)
    generator = dataset.metadata["generator"]
    if {key: generator.get(key) for key in expected} != expected:
        raise ValueError(f"{path} was generated with {generator}, not {expected}; use a new run dir")
    return dataset


class StageCache:
    """JSON results of finished stages, so a rerun skips them.

    A stage whose result depends on settings a rerun may change (a CLI override, another base
    model) is stored with those settings (``depends_on``); reading it back with other settings
    raises :class:`CheckpointError` naming the file, instead of silently reusing a result made
    with the old ones (SPEC B4).
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def get(self, name: str, depends_on: dict[str, Any] | None = None) -> Any | None:
        path = self.directory / f"{name}.json"
        if not path.exists():
            return None
        stored = json.loads(path.read_text())
        if depends_on is None:
            return stored
        wanted = tuples_to_lists(depends_on)
        if not isinstance(stored, dict) or stored.get("depends_on") != wanted:
            found = stored.get("depends_on") if isinstance(stored, dict) else None
            raise CheckpointError(f"{path}: this stage was made with other settings; use a new run directory "
                                  f"(stored {found}, requested {wanted})")
        return stored["value"]

    def put(self, name: str, value: Any, depends_on: dict[str, Any] | None = None) -> Any:
        stored = value if depends_on is None else {"depends_on": tuples_to_lists(depends_on), "value": value}
        write_text_atomic(self.directory / f"{name}.json", json.dumps(stored, indent=2))
        return value


def run_study(config: StudyConfig, run_dir: Path, out_dir: Path, progress: bool = True,
              device: str | torch.device = "cpu") -> dict[str, Any]:
    """Run (or resume) every stage and write the report; returns the results dict.

    ``device`` is where the pretraining and the ground-truth controllers run (the heavy stages:
    the ``paper`` preset's 256,000 steps at batch 1,024, then 3,200 steps at batch 512 per layer);
    probes and rollouts stay on the CPU.

    A pretraining config without ``snapshot_steps`` is refused before anything runs: the probes
    stage (SPEC A§4.1) probes those snapshots and the report tabulates them, so such a study
    would train every stage and then fail writing the report.
    """
    n_layers = config.pretrain.model.n_layers
    outside = [layer for layer in config.controller_layers or () if not 0 <= layer <= n_layers]
    if outside:  # refused before pretraining, not after it and the probes
        raise ValueError(f"StudyConfig.controller_layers {outside} are outside 0..{n_layers} (the model's layers)")
    if not config.pretrain.snapshot_steps:
        raise ValueError(
            "StudyConfig.pretrain.snapshot_steps is empty, so there is no checkpoint to probe (SPEC A§4.1); name at "
            f"least one step in [1, train_steps={config.pretrain.train_steps}], e.g. the last"
        )
    device = resolve_device(device)
    set_threads(config.pretrain.num_threads)
    run_dir.mkdir(parents=True, exist_ok=True)
    stages = StageCache(run_dir / "stages")
    d_data, dstar_data = ensure_datasets(config.data, run_dir, progress)
    post_env_id, pretrain_env_id = config.env_ids

    model_path = pretrain(config.pretrain, d_data, run_dir / "base_model", progress=progress, device=device)
    pretrain_record = load_checkpoint(model_path)
    model = freeze(load_base_model(model_path))
    n_layers = model.config.n_layers
    # what each stage was measured with, so a rerun with other settings is refused instead of
    # reporting the old numbers under the new config (StageCache)
    base_model = {"base_model": module_fingerprint(model)}
    evaluation = {"eval_episodes": config.eval_episodes, "eval_seed": config.eval_seed,
                  "eval_greedy": config.eval_greedy, "eval_batch_envs": config.eval_batch_envs}
    probe_settings = {**base_model, "probes": dataclasses.asdict(config.probes),
                      "snapshot_steps": list(config.pretrain.snapshot_steps)}
    controller_settings = {**base_model, **evaluation, "controllers": config.controllers.settings()}

    probes = stages.get("probes", probe_settings)
    if probes is None:
        probes = {}
        snapshot_dir = run_dir / "base_model" / "snapshots"
        for step in sorted(config.pretrain.snapshot_steps):
            snapshot = freeze(load_base_model(snapshot_dir / f"step_{step}.pt"))
            result = probe_model(snapshot, dstar_data, config.probes)
            probes[str(step)] = {key: value.tolist() for key, value in result.items()}
        probes = stages.put("probes", probes, probe_settings)

    expert = None
    if config.env == "ant":  # the paper normalises ant success by its expert's (SPEC A§2.3)
        expert_settings = {"env_id": post_env_id, "eval_episodes": config.eval_episodes, "eval_seed": config.eval_seed}
        expert = stages.get("expert", expert_settings)
        if expert is None:
            report = evaluate_ant_expert(post_env_id, config.eval_episodes, config.eval_seed)
            expert = stages.put("expert", {key: report[key] for key in ("success_rate", "episodes", "seed", "mean_colors_visited")},
                                expert_settings)

    unsteered_settings = {**base_model, **evaluation}
    unsteered = stages.get("unsteered", unsteered_settings)
    if unsteered is None:
        unsteered = {}
        for env_id in (post_env_id, pretrain_env_id):
            stats = evaluate_policy(model, env_id, config.eval_episodes, config.eval_seed, batch_envs=config.eval_batch_envs,
                                    greedy=config.eval_greedy)
            unsteered[env_id] = _stats_dict(stats)
        unsteered = stages.put("unsteered", unsteered, unsteered_settings)

    layers = config.controller_layers if config.controller_layers is not None else tuple(range(n_layers + 1))
    controllers: dict[str, Any] = stages.get("controllers", controller_settings) or {}
    for layer in layers:
        if str(layer) in controllers:
            continue
        tic = time.perf_counter()
        trained, losses = train_subgoal_controllers(model, dstar_data, layer, config.controllers, progress=progress,
                                                    device=device)
        train_seconds = time.perf_counter() - tic
        save_subgoal_controllers(run_dir / "controllers" / f"layer_{layer}.pt", trained, config.controllers, layer,
                                 base_model=model)
        stats = evaluate_subgoal_controllers(model, trained, layer, env_id=post_env_id, n_episodes=config.eval_episodes,
                                             seed=config.eval_seed, greedy=config.eval_greedy,
                                             batch_envs=config.eval_batch_envs)
        controllers[str(layer)] = {
            **_stats_dict(stats),
            "final_train_nll": float(np.mean(losses[-20:])),
            "train_seconds": train_seconds,
        }
        stages.put("controllers", controllers, controller_settings)

    composition = None
    mid = model.config.controlled_layer
    if config.env == "grid" and str(mid) in controllers:
        composition = stages.get("composition", controller_settings)
        if composition is None:
            composition = composition_breakdown(model, run_dir / "controllers" / f"layer_{mid}.pt", mid, config,
                                                pretrain_env_id)
            composition = stages.put("composition", composition, controller_settings)

    results = {
        "env": config.env,
        "env_ids": list(config.env_ids),
        "config": tuples_to_lists(dataclasses.asdict(config)),
        "pretraining": {
            "wall_seconds": pretrain_record["elapsed_s"],
            "steps": pretrain_record["step"],
            "devices": pretrain_record.get("devices", ["cpu"]),
            "metrics": CsvLog(run_dir / "base_model" / "metrics.csv", ["step"]).read(),
        },
        "probes": probes,
        "unsteered": unsteered,
        "controllers": controllers,
        "composition": composition,
        "expert": expert,
        "controlled_layer": model.config.controlled_layer,
        "datasets": {"D": d_data.provenance(), "Dstar": dstar_data.provenance()},
        "versions": {"python": platform.python_version(), "torch": torch.__version__, "numpy": np.__version__},
        "machine": machine_description(),
        "command": " ".join(sys.argv),
    }
    write_report(results, out_dir)
    return results


def composition_breakdown(model: Any, controllers_path: Path, layer: int, config: StudyConfig, env_id: str) -> dict[str, Any]:
    """Ground-truth controllers at ``layer`` on the grid's 2 × 2 composition table (transitions seen
    or unseen in pretraining × 3 or 6 subgoals; :func:`hier_envs.tasks.grid_composition_task_sets`).

    The post-training task is novel in two ways at once (SPEC A§2.1 INFERRED); this separates
    them, so a low post-training success says whether the controllers fail at unseen subgoal
    transitions, at the longer horizon, or both. Every cell uses the same episodes count and seed.
    """
    controllers = freeze(load_subgoal_controllers(controllers_path, model.config.width))
    cells = {}
    for name, tasks in grid_composition_task_sets().items():
        stats = evaluate_subgoal_controllers(model, controllers, layer, env_id=env_id, n_episodes=config.eval_episodes,
                                             seed=config.eval_seed, greedy=config.eval_greedy,
                                             batch_envs=config.eval_batch_envs, env_kwargs={"tasks": tasks})
        counts = np.bincount(stats.colors_visited, minlength=len(tasks[0]) + 1)
        cells[name] = {**_stats_dict(stats), "n_tasks": len(tasks), "task_colors": len(tasks[0]),
                       "colors_visited_counts": counts.tolist()}
    return cells


def subgoal_completion_rates(colors_visited_counts: list[int]) -> list[float | None]:
    """P(subgoal k completed | subgoal k started) for k = 1, 2, …, from a histogram of colours
    visited per episode (a grid subgoal is 2 colours: started at ``2(k-1)`` visited, completed
    at ``2k``); ``None`` where no episode started subgoal k."""
    reached = np.cumsum(np.asarray(colors_visited_counts)[::-1])[::-1]  # reached[c]: episodes with >= c colours
    return [float(reached[2 * k] / reached[2 * k - 2]) if reached[2 * k - 2] > 0 else None
            for k in range(1, (len(colors_visited_counts) - 1) // 2 + 1)]


def _stats_dict(stats: Any) -> dict[str, Any]:
    return {
        "success_rate": stats.success_rate,
        "episodes": int(len(stats.success)),
        "mean_length": float(stats.lengths.mean()),
        "mean_colors_visited": float(stats.colors_visited.mean()),
        "endings": stats.ending_counts(),
    }


def format_endings(row: dict[str, Any]) -> str:
    """The unsuccessful endings of a result row, e.g. ``wrong_color 812 · timeout 3``; ``n/a`` for
    rows written before endings were recorded."""
    endings = row.get("endings")
    if endings is None:
        return "n/a"
    failed = [f"{name} {count}" for name, count in endings.items() if name != "success" and count > 0]
    return " · ".join(failed) if failed else "none"


def write_report(results: dict[str, Any], out_dir: Path) -> None:
    """Markdown tables, JSON and PNG plots, all from ``results``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out_dir / "results.json", json.dumps(results, indent=2))
    probes, controllers, unsteered = results["probes"], results["controllers"], results["unsteered"]
    steps = sorted(probes, key=int)
    n_layers = len(probes[steps[-1]]["val_accuracy"])
    mid = results["controlled_layer"]
    post_env_id, _ = results.get("env_ids", ["HierGrid-v0", "HierGrid-Pretrain-v0"])
    ant = results.get("env") == "ant"
    task_colors = 4 if ant else 12
    expert = results.get("expert")
    lines = [
        f"# {'Ant' if ant else 'Grid'} base model study",
        "",
        f"Command: `{results['command']}`  ",
        f"Pretraining: {results['pretraining']['steps']} steps in {results['pretraining']['wall_seconds'] / 60:.1f} min "
        + ("(wall time of the training loop on this machine, summed over resumes)."
           if results["pretraining"].get("devices", ["cpu"]) == ["cpu"] else
           f"(wall time of the training loop, summed over resumes, on {' + '.join(results['pretraining']['devices'])})."),
        "",
        "## Linear probes: held-out subgoal accuracy per layer (SPEC A§4.1)",
        "",
        "| checkpoint step | " + " | ".join(f"layer {l}" for l in range(n_layers)) + " | chance |",
        "|---|" + "---|" * (n_layers + 1),
    ]
    for step in steps:
        accuracy = probes[step]["val_accuracy"]
        lines.append(f"| {step} | " + " | ".join(f"{a:.3f}" for a in accuracy) + f" | {probes[step]['chance_accuracy'][0]:.3f} |")
    lines += [
        "",
        f"## Ground-truth-label controllers on the unseen post-training task {post_env_id} (SPEC A§4.2; mid-depth = layer {mid})",
        "",
    ]
    if expert is not None:
        lines += [
            f"Normalised success divides by the ant expert's own success on {post_env_id} "
            f"({expert['success_rate']:.3f} over {expert['episodes']} episodes of its own evaluation stream, seed "
            f"{expert['seed']}), as the paper does.",
            "",
        ]
    normalised_header = " normalised success |" if expert is not None else ""
    lines += [
        f"| insertion layer | success rate |{normalised_header} episodes | mean colours visited (of {task_colors}) | mean length | unsuccessful endings |",
        "|---|---|---|---|---|---|" + ("---|" if expert is not None else ""),
    ]
    for layer in sorted(controllers, key=int):
        row = controllers[layer]
        normalised = ""
        if expert is not None:
            normalised = f" {row['success_rate'] / expert['success_rate']:.3f} |" if expert["success_rate"] > 0 else " n/a |"
        lines.append(
            f"| {layer}{' (mid)' if int(layer) == mid else ''} | {row['success_rate']:.3f} |{normalised} {row['episodes']} | "
            f"{row['mean_colors_visited']:.2f} | {row['mean_length']:.1f} | {format_endings(row)} |"
        )
    composition = results.get("composition")
    if composition:
        lines += [
            "",
            f"## Where composition breaks: ground-truth controllers at layer {mid} by kind of novelty",
            "",
            "The post-training task has both unseen subgoal transitions and twice the pretraining length; "
            "each row below has one, the other, both or neither.",
            "",
            "| task pool | tasks | success rate | episodes | mean colours visited (of task) |",
            "|---|---|---|---|---|",
        ]
        for name, row in composition.items():
            lines.append(f"| {name} | {row['n_tasks']} | {row['success_rate']:.3f} | {row['episodes']} | "
                         f"{row['mean_colors_visited']:.2f} (of {row['task_colors']}) |")
        longest = max(row["task_colors"] // 2 for row in composition.values())
        lines += [
            "",
            "Completion of each subgoal among the episodes that started it (P(subgoal k done | subgoal k started)):",
            "",
            "| task pool | " + " | ".join(f"k = {k}" for k in range(1, longest + 1)) + " |",
            "|---|" + "---|" * longest,
        ]
        for name, row in composition.items():
            rates = subgoal_completion_rates(row["colors_visited_counts"])
            cells = ["n/a" if r is None else f"{r:.2f}" for r in rates] + ["—"] * (longest - len(rates))
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += ["", "## Unsteered base model", "", "| env | success rate | episodes | mean colours visited | unsuccessful endings |",
              "|---|---|---|---|---|"]
    for env_id, row in unsteered.items():
        lines.append(f"| {env_id} | {row['success_rate']:.3f} | {row['episodes']} | {row['mean_colors_visited']:.2f} | {format_endings(row)} |")
    write_text_atomic(out_dir / "report.md", "\n".join(lines) + "\n")

    figure, axis = plt.subplots(figsize=(5, 3.5))
    for step in steps:
        axis.plot(range(n_layers), probes[step]["val_accuracy"], marker="o", label=f"step {step}")
    axis.axhline(probes[steps[-1]]["chance_accuracy"][0], color="grey", linestyle=":", label="majority class")
    axis.set(xlabel="layer", ylabel="held-out probe accuracy", title="Subgoal decoding from the residual stream")
    axis.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(out_dir / "probes.png", dpi=120)
    plt.close(figure)

    figure, axis = plt.subplots(figsize=(5, 3.5))
    layer_ids = sorted(controllers, key=int)
    axis.bar([int(l) for l in layer_ids], [controllers[l]["success_rate"] for l in layer_ids], color="tab:blue")
    axis.axhline(unsteered[post_env_id]["success_rate"], color="tab:red", linestyle="--", label="unsteered")
    if expert is not None:
        axis.axhline(expert["success_rate"], color="tab:green", linestyle=":", label="expert")
    axis.set(xlabel="insertion layer", ylabel=f"success on {post_env_id}", ylim=(0, 1), title="Ground-truth controllers")
    axis.legend()
    figure.tight_layout()
    figure.savefig(out_dir / "controllers.png", dpi=120)
    plt.close(figure)

    metrics = results["pretraining"]["metrics"]
    if metrics:
        figure, axis = plt.subplots(figsize=(5, 3.5))
        x = [int(float(row["step"])) for row in metrics]
        axis.plot(x, [float(row["train_action_nll"]) for row in metrics], label="train action NLL")
        axis.plot(x, [float(row["val_action_nll"]) for row in metrics], label="validation action NLL")
        axis.set(xlabel="step", ylabel="NLL (nats)", title="Pretraining")
        axis.legend()
        figure.tight_layout()
        figure.savefig(out_dir / "pretraining.png", dpi=120)
        plt.close(figure)


def with_pretrain_steps(config: StudyConfig, steps: int) -> StudyConfig:
    """``config`` with ``steps`` pretraining steps; ``steps`` joins the probe snapshots and
    snapshots beyond it are dropped. A run dir refuses another length (``check_same_config``), so
    a longer run always starts in a new run dir (a ``"cosine"`` learning rate depends on it)."""
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"pretraining steps must be an int >= 1, got {steps!r}")
    snapshots = tuple(sorted({s for s in config.pretrain.snapshot_steps if s < steps} | {steps}))
    return dataclasses.replace(config, pretrain=dataclasses.replace(config.pretrain, train_steps=steps, snapshot_steps=snapshots))


def _with_pretrain_number(config: StudyConfig, field_name: str, value: float) -> StudyConfig:
    """``config`` with the pretraining field ``field_name`` set to ``value``; ``PretrainConfig``
    checks it (``TypeError`` / ``ValueError`` naming ``PretrainConfig.<field>``)."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = float(value)  # 1 and 1.0 record alike in the run dir's config
    return dataclasses.replace(config, pretrain=dataclasses.replace(config.pretrain, **{field_name: value}))


def with_pretrain_batch_size(config: StudyConfig, batch_size: int) -> StudyConfig:
    """``config`` with ``batch_size`` episodes per pretraining batch (the paper's 1,024 on a GPU,
    against ``default``'s 128 sized for 2 CPU cores); ``PretrainConfig`` checks it."""
    return dataclasses.replace(config, pretrain=dataclasses.replace(config.pretrain, batch_size=batch_size))


def with_pretrain_seed(config: StudyConfig, seed: int) -> StudyConfig:
    """``config`` with pretraining seed ``seed`` (model initialisation, train/validation split and
    batch order) on the same D and D*: another backbone of the same preset, as the paper's 10
    base models per environment (SPEC A§3.1; Fig. A1, A2 report medians over them).
    ``PretrainConfig`` refuses anything but an int >= 0 (``ValueError`` naming its ``seed``)."""
    return dataclasses.replace(config, pretrain=dataclasses.replace(config.pretrain, seed=seed))


def with_pretrain_weight_decay(config: StudyConfig, weight_decay: float) -> StudyConfig:
    """``config`` with AdamW weight decay ``weight_decay`` for pretraining.

    AdamW shrinks every weight by ``lr · weight_decay`` per step, so the total shrinkage over a
    run scales with ``lr · weight_decay · steps``: 3e-4 · 0.03 · 256,000 ≈ 2.3 for the paper
    (Table A4) against 1e-3 · 0.03 · 6,000 = 0.18 for the ``default`` preset. This override
    lets a short run match the paper's total (about 0.4 at ``default``'s lr and length); the
    paper's Fig. A2 finds post-training control depends on weight decay (SPEC A§4.2)."""
    return _with_pretrain_number(config, "weight_decay", weight_decay)


def with_pretrain_obs_loss_weight(config: StudyConfig, obs_loss_weight: float) -> StudyConfig:
    """``config`` with next-observation loss weight λ = ``obs_loss_weight`` for pretraining.

    The paper's Fig. A2 finds λ the backbone setting that post-training control depends on most:
    some observation loss helps and a very small λ can fail completely (SPEC A§4.2); its grid
    sweep was {0, 0.01} (SPEC A§3.2). The grid's next-observation NLL here is summed over the
    637 observation bits, so λ = 0.01 already weighs it at about 40% of the action NLL (0.25 against
    0.62 nats at the end of the `default` run)."""
    return _with_pretrain_number(config, "obs_loss_weight", obs_loss_weight)


def with_data_epsilon(config: StudyConfig, epsilon: float) -> StudyConfig:
    """``config`` with expert noise ε = ``epsilon`` in the grid pretraining dataset D.

    Every preset's D uses the paper's default ε = 0 (SPEC A§2.3); Fig. A2 studies [0, 0.2], and
    this option reproduces that axis. D* stays at ε = 0 either way. The ant's D samples the expert's Gaussian
    torques instead, so the option is refused there (``ValueError``); ``GridDataConfig`` refuses
    an ε outside [0, 1] or not a number, naming ``GridDataConfig.d_epsilon``."""
    if not isinstance(config.data, GridDataConfig):
        raise ValueError(f"data epsilon is a grid setting; the {config.env} study's D samples the expert's torques (SPEC A§2.3)")
    if isinstance(epsilon, int) and not isinstance(epsilon, bool):
        epsilon = float(epsilon)  # 0 and 0.0 record alike in the dataset's metadata
    return dataclasses.replace(config, data=dataclasses.replace(config.data, d_epsilon=epsilon))  # GridDataConfig checks it


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Base-model study: pretraining, probes, ground-truth controllers (SPEC A§3-4).")
    parser.add_argument("--env", choices=("grid", "ant"), default="grid")
    parser.add_argument("--preset", choices=sorted(STUDY_PRESETS), default="default")
    parser.add_argument("--run-dir", default=None, help="default runs/<env>_<preset>")
    parser.add_argument("--out", default=None, help="default results/base_model_<preset> (grid), results/base_model_ant_<preset>")
    parser.add_argument("--layers", type=int, nargs="*", default=None, help="controller insertion layers (default: the preset's)")
    parser.add_argument("--pretrain-steps", type=int, default=None,
                        help="override the preset's pretraining length (kept as a probe snapshot too): backbone-training "
                             "studies as in the paper's Fig. A2. A finished shorter run in the same run dir is not "
                             "extended: use a new run dir")
    parser.add_argument("--pretrain-batch-size", type=int, default=None,
                        help="override the preset's pretraining batch (episodes; paper 1,024) (use a new run dir)")
    parser.add_argument("--pretrain-seed", type=int, default=None,
                        help="override the preset's pretraining seed (initialisation, validation split, batch order) "
                             "for another backbone on the same D and D* (the paper trains 10) (use a new run dir)")
    parser.add_argument("--pretrain-weight-decay", type=float, default=None,
                        help="override the preset's pretraining AdamW weight decay (use a new run dir)")
    parser.add_argument("--pretrain-obs-loss-weight", type=float, default=None,
                        help="override the preset's pretraining next-observation loss weight λ (use a new run dir)")
    parser.add_argument("--pretrain-lr-schedule", choices=LR_SCHEDULES, default=None,
                        help="override the preset's pretraining learning-rate schedule (use a new run dir)")
    parser.add_argument("--pretrain-precision", choices=PRECISIONS, default=None,
                        help="override the preset's pretraining forward-pass arithmetic: bfloat16 autocast is faster "
                             "on hardware with bfloat16 units, and a different run (use a new run dir)")
    parser.add_argument("--data-epsilon", type=float, default=None,
                        help="override the grid preset's expert noise ε in D (default 0, the paper's; Fig. A2 "
                             "studies 0-0.2); D* stays at 0 (use a new run dir)")
    parser.add_argument("--controller-form", choices=CONTROLLER_FORMS, default=None,
                        help="override the preset's ground-truth-controller parameterisation: hypernetwork (the "
                             "paper's, default) or lookup (one matrix per subgoal; every controller result committed "
                             "before session 29)")
    parser.add_argument("--device", default="cpu",
                        help="torch device for pretraining and the ground-truth controllers: cpu (default), cuda, "
                             "cuda:N or mps; probes and rollouts run on the CPU. A run may resume on another device")
    args = parser.parse_args(argv)
    try:
        device = resolve_device(args.device)
    except ValueError as error:
        parser.error(str(error))
    config = (STUDY_PRESETS if args.env == "grid" else ANT_STUDY_PRESETS)[args.preset]
    if args.layers is not None:
        config = dataclasses.replace(config, controller_layers=tuple(args.layers))
    if args.controller_form is not None:
        config = dataclasses.replace(config, controllers=dataclasses.replace(config.controllers, form=args.controller_form))
    if args.pretrain_steps is not None:
        config = with_pretrain_steps(config, args.pretrain_steps)
    try:
        if args.pretrain_batch_size is not None:
            config = with_pretrain_batch_size(config, args.pretrain_batch_size)
        if args.pretrain_seed is not None:
            config = with_pretrain_seed(config, args.pretrain_seed)
    except (TypeError, ValueError) as error:
        parser.error(str(error))
    if args.pretrain_weight_decay is not None:
        config = with_pretrain_weight_decay(config, args.pretrain_weight_decay)
    if args.pretrain_obs_loss_weight is not None:
        config = with_pretrain_obs_loss_weight(config, args.pretrain_obs_loss_weight)
    if args.pretrain_lr_schedule is not None:
        config = dataclasses.replace(config, pretrain=dataclasses.replace(config.pretrain, lr_schedule=args.pretrain_lr_schedule))
    if args.pretrain_precision is not None:
        config = dataclasses.replace(config, pretrain=dataclasses.replace(config.pretrain, precision=args.pretrain_precision))
    if args.data_epsilon is not None:
        try:
            config = with_data_epsilon(config, args.data_epsilon)
        except (TypeError, ValueError) as error:
            parser.error(str(error))
    run_dir = Path(args.run_dir or f"runs/{args.env}_{args.preset}")
    out_dir = Path(args.out or (f"results/base_model_{args.preset}" if args.env == "grid" else f"results/base_model_ant_{args.preset}"))
    results = run_study(config, run_dir, out_dir, device=device)
    print((out_dir / "report.md").read_text())
    del results


if __name__ == "__main__":
    main()
