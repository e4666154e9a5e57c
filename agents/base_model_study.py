"""Base-model study: datasets → pretraining → probes → ground-truth controllers → report.

``python -m agents.base_model_study --preset default`` runs SPEC A§3–4 end to end for the grid
and writes a results folder::

    results/base_model_<preset>/
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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from agents.checkpoints import load_checkpoint, save_checkpoint
from agents.controllers import (
    CONTROLLER_PRESETS,
    ControllerConfig,
    evaluate_subgoal_controllers,
    train_subgoal_controllers,
)
from agents.models.controller import freeze
from agents.pretrain import PRETRAIN_PRESETS, PretrainConfig, load_base_model, pretrain
from agents.probes import PROBE_PRESETS, ProbeConfig, probe_model
from agents.rollouts import evaluate_policy
from agents.training_utils import CsvLog, set_threads, tuples_to_lists, write_text_atomic
from hier_envs.datasets import EpisodeDataset, generate_grid_dataset, load_dataset, save_dataset


@dataclass(frozen=True)
class GridDataConfig:
    """Expert datasets D and D* (SPEC A§2.3, B3)."""

    d_episodes: int = 50_000
    """Episodes in D (pretraining); the paper gives no size (SPEC §9.1 item 1)."""
    d_epsilon: float = 0.1
    """Expert noise in D, inside the paper's robust range [0, 0.2] (Fig. A2)."""
    dstar_episodes: int = 10_000
    """Episodes in D* (ε = 0), for controllers and the metacontroller."""
    seed: int = 1


DATA_PRESETS: dict[str, GridDataConfig] = {
    "smoke": GridDataConfig(d_episodes=300, dstar_episodes=100),
    "default": GridDataConfig(d_episodes=300_000),
    "paper": GridDataConfig(d_episodes=200_000, dstar_episodes=50_000),
}


@dataclass(frozen=True)
class StudyConfig:
    """Everything one base-model study runs (presets SPEC B5)."""

    data: GridDataConfig
    pretrain: PretrainConfig
    probes: ProbeConfig
    controllers: ControllerConfig
    controller_layers: tuple[int, ...] | None = None
    """Insertion layers to train controllers at; ``None`` means every layer 0..L."""
    eval_episodes: int = 1000
    """Post-training episodes per evaluation (SPEC acceptance: 1,000)."""
    eval_seed: int = 10_000


STUDY_PRESETS: dict[str, StudyConfig] = {
    name: StudyConfig(DATA_PRESETS[name], PRETRAIN_PRESETS[name], PROBE_PRESETS[name], CONTROLLER_PRESETS[name])
    for name in ("smoke", "default", "paper")
}
STUDY_PRESETS["smoke"] = dataclasses.replace(STUDY_PRESETS["smoke"], eval_episodes=40)


def ensure_grid_datasets(config: GridDataConfig, run_dir: Path, progress: bool = True) -> tuple[EpisodeDataset, EpisodeDataset]:
    """Load D and D* from ``run_dir``, generating them on first use."""
    datasets = []
    for name, episodes, epsilon, seed in (
        ("data_D.npz", config.d_episodes, config.d_epsilon, config.seed),
        ("data_Dstar.npz", config.dstar_episodes, 0.0, config.seed + 1),
    ):
        path = run_dir / name
        if not path.exists():
            save_dataset(generate_grid_dataset(episodes, epsilon, seed, progress=progress), path)
        dataset = load_dataset(path)
        generator = dataset.metadata["generator"]
        if (generator["episodes"], generator["epsilon"], generator["seed"]) != (episodes, epsilon, seed):
            raise ValueError(f"{path} was generated with {generator}, not ({episodes=}, {epsilon=}, {seed=}); use a new run dir")
        datasets.append(dataset)
    return datasets[0], datasets[1]


class StageCache:
    """JSON results of finished stages, so a rerun skips them."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def get(self, name: str) -> Any | None:
        path = self.directory / f"{name}.json"
        return json.loads(path.read_text()) if path.exists() else None

    def put(self, name: str, value: Any) -> Any:
        write_text_atomic(self.directory / f"{name}.json", json.dumps(value, indent=2))
        return value


def run_study(config: StudyConfig, run_dir: Path, out_dir: Path, progress: bool = True) -> dict[str, Any]:
    """Run (or resume) every stage and write the report; returns the results dict."""
    set_threads(config.pretrain.num_threads)
    run_dir.mkdir(parents=True, exist_ok=True)
    stages = StageCache(run_dir / "stages")
    d_data, dstar_data = ensure_grid_datasets(config.data, run_dir, progress)

    model_path = pretrain(config.pretrain, d_data, run_dir / "base_model", progress=progress)
    pretrain_record = load_checkpoint(model_path)
    model = freeze(load_base_model(model_path))
    n_layers = model.config.n_layers

    probes = stages.get("probes")
    if probes is None:
        probes = {}
        snapshot_dir = run_dir / "base_model" / "snapshots"
        for step in sorted(config.pretrain.snapshot_steps):
            snapshot = freeze(load_base_model(snapshot_dir / f"step_{step}.pt"))
            result = probe_model(snapshot, dstar_data, config.probes)
            probes[str(step)] = {key: value.tolist() for key, value in result.items()}
        probes = stages.put("probes", probes)

    unsteered = stages.get("unsteered")
    if unsteered is None:
        unsteered = {}
        for env_id in ("HierGrid-v0", "HierGrid-Pretrain-v0"):
            stats = evaluate_policy(model, env_id, config.eval_episodes, config.eval_seed)
            unsteered[env_id] = _stats_dict(stats)
        unsteered = stages.put("unsteered", unsteered)

    layers = config.controller_layers if config.controller_layers is not None else tuple(range(n_layers + 1))
    controllers: dict[str, Any] = stages.get("controllers") or {}
    for layer in layers:
        if str(layer) in controllers:
            continue
        tic = time.perf_counter()
        trained, losses = train_subgoal_controllers(model, dstar_data, layer, config.controllers, progress=progress)
        train_seconds = time.perf_counter() - tic
        save_checkpoint(
            run_dir / "controllers" / f"layer_{layer}.pt",
            {"kind": "subgoal_controllers", "model": trained.state_dict(), "optimizer": None,
             "step": config.controllers.train_steps, "config": dataclasses.asdict(config.controllers), "layer": layer},
        )
        stats = evaluate_subgoal_controllers(model, trained, layer, n_episodes=config.eval_episodes, seed=config.eval_seed)
        controllers[str(layer)] = {
            **_stats_dict(stats),
            "final_train_nll": float(np.mean(losses[-20:])),
            "train_seconds": train_seconds,
        }
        stages.put("controllers", controllers)

    results = {
        "config": tuples_to_lists(dataclasses.asdict(config)),
        "pretraining": {
            "wall_seconds": pretrain_record["elapsed_s"],
            "steps": pretrain_record["step"],
            "metrics": CsvLog(run_dir / "base_model" / "metrics.csv", ["step"]).read(),
        },
        "probes": probes,
        "unsteered": unsteered,
        "controllers": controllers,
        "controlled_layer": model.config.controlled_layer,
        "versions": {"python": platform.python_version(), "torch": torch.__version__, "numpy": np.__version__},
        "command": " ".join(sys.argv),
    }
    write_report(results, out_dir)
    return results


def _stats_dict(stats: Any) -> dict[str, Any]:
    return {
        "success_rate": stats.success_rate,
        "episodes": int(len(stats.success)),
        "mean_length": float(stats.lengths.mean()),
        "mean_colors_visited": float(stats.colors_visited.mean()),
    }


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
    lines = [
        "# Grid base model study",
        "",
        f"Command: `{results['command']}`  ",
        f"Pretraining: {results['pretraining']['steps']} steps in {results['pretraining']['wall_seconds'] / 60:.1f} min "
        "(wall time of the training loop on this machine, summed over resumes).",
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
        f"## Ground-truth-label controllers on the unseen post-training task HierGrid-v0 (SPEC A§4.2; mid-depth = layer {mid})",
        "",
        "| insertion layer | success rate | episodes | mean colours visited (of 12) | mean length |",
        "|---|---|---|---|---|",
    ]
    for layer in sorted(controllers, key=int):
        row = controllers[layer]
        lines.append(
            f"| {layer}{' (mid)' if int(layer) == mid else ''} | {row['success_rate']:.3f} | {row['episodes']} | "
            f"{row['mean_colors_visited']:.2f} | {row['mean_length']:.1f} |"
        )
    lines += ["", "## Unsteered base model", "", "| env | success rate | episodes | mean colours visited |", "|---|---|---|---|"]
    for env_id, row in unsteered.items():
        lines.append(f"| {env_id} | {row['success_rate']:.3f} | {row['episodes']} | {row['mean_colors_visited']:.2f} |")
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
    axis.axhline(unsteered["HierGrid-v0"]["success_rate"], color="tab:red", linestyle="--", label="unsteered")
    axis.set(xlabel="insertion layer", ylabel="success on HierGrid-v0", ylim=(0, 1), title="Ground-truth controllers")
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


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Grid base-model study (SPEC A§3-4).")
    parser.add_argument("--preset", choices=sorted(STUDY_PRESETS), default="default")
    parser.add_argument("--run-dir", default=None, help="default runs/grid_<preset>")
    parser.add_argument("--out", default=None, help="default results/base_model_<preset>")
    parser.add_argument("--layers", type=int, nargs="*", default=None, help="controller insertion layers (default all)")
    args = parser.parse_args(argv)
    config = STUDY_PRESETS[args.preset]
    if args.layers is not None:
        config = dataclasses.replace(config, controller_layers=tuple(args.layers))
    run_dir = Path(args.run_dir or f"runs/grid_{args.preset}")
    out_dir = Path(args.out or f"results/base_model_{args.preset}")
    results = run_study(config, run_dir, out_dir)
    print((out_dir / "report.md").read_text())
    del results


if __name__ == "__main__":
    main()
