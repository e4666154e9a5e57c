"""Metacontroller training with the frozen lower half's residuals tabled once against recomputed
every batch (:class:`agents.lower_residuals.LowerResiduals`; SPEC A§5, B5 "performance").

Why: the metacontroller, the ground-truth controllers and CompILE read ``e_{1:T,l}`` of a *frozen*
base model at every optimiser step; the table computes it once per dataset. This times
:func:`agents.train_metacontroller.train_metacontroller` itself, same config, data and seed,
once with the table (its default) and once with ``residual_table_max_bytes=0`` (the lower half
run every batch), in alternating order per round, and records the one-off table build.

The backbone is a randomly initialised model of the chosen grid preset: the cost of a forward
pass does not depend on the weights, and no pretrained checkpoint is needed.

    python benchmarks/lower_residuals_speed.py --out results/lower_residuals_speed.json
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # `python benchmarks/lower_residuals_speed.py`: make `import benchmarks` work
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import dataclasses
import statistics
import tempfile
import time
from dataclasses import dataclass
from typing import Any

import torch
import tyro

from agents.base_model_study import DATA_PRESETS
from agents.lower_residuals import LowerResiduals
from agents.models.base_models import build_base_model
from agents.models.controller import freeze
from agents.pretrain import PRETRAIN_PRESETS
from agents.train_metacontroller import METACONTROLLER_PRESETS, train_metacontroller
from agents.training_utils import CsvLog, check_positive_ints, set_threads
from benchmarks.timing_report import markdown_table, provenance, publish_report
from hier_envs.datasets import generate_grid_dataset

MODES = ("table", "recomputed")


@dataclass(frozen=True)
class LowerResidualsSpeedConfig:
    """Command-line configuration."""

    preset: str = "default"
    """Grid preset of the backbone (``agents.pretrain``) and of the metacontroller."""
    steps: int = 30
    """Timed metacontroller optimiser steps per round and mode."""
    rounds: int = 3
    """Rounds; each times both modes once, in alternating order (odd, so the median is a round's)."""
    dstar_episodes: int | None = None
    """Episodes of the generated D* (default: the preset's, 10,000 for ``default``; the study's seed)."""
    num_threads: int = 1
    """torch threads for every timed part."""
    out: Path | None = None
    """Optional JSON output path."""


def _check(config: LowerResidualsSpeedConfig) -> None:
    if config.preset not in PRETRAIN_PRESETS or config.preset not in METACONTROLLER_PRESETS:
        raise ValueError(f"unknown grid preset {config.preset!r}; expected one of {sorted(METACONTROLLER_PRESETS)}")
    check_positive_ints(config, ("steps", "rounds", "num_threads"))
    check_positive_ints(config, ("dstar_episodes",), allow_none=True)


def time_lower_residuals(config: LowerResidualsSpeedConfig) -> dict[str, Any]:
    """Seconds per metacontroller step in each mode (the trainer's own ``elapsed_s``), per round,
    and the wall time of building the table alone."""
    _check(config)
    data_config = DATA_PRESETS[config.preset]
    episodes = data_config.dstar_episodes if config.dstar_episodes is None else config.dstar_episodes
    dstar = generate_grid_dataset(episodes, 0.0, data_config.seed + 1, progress=False)  # the study's D* seed
    torch.manual_seed(0)
    base_model = freeze(build_base_model(PRETRAIN_PRESETS[config.preset].model))
    layer = base_model.config.controlled_layer
    # the preset's model and batch; its α schedule (longer than the timed steps) does not change
    # a step's cost, so the timed run keeps the configured α throughout
    train_config = dataclasses.replace(METACONTROLLER_PRESETS[config.preset], train_steps=config.steps,
                                       log_every=config.steps, checkpoint_every=config.steps,
                                       num_threads=config.num_threads, early_kl_weight=None, early_kl_steps=0,
                                       kl_warmup_steps=0)
    set_threads(config.num_threads)
    started = time.perf_counter()
    table = LowerResiduals(base_model, dstar, layer)
    build_s = time.perf_counter() - started
    if not table.cached:
        raise ValueError(f"the residual table of {episodes} episodes exceeds LowerResiduals' memory cap")
    rounds = []
    with tempfile.TemporaryDirectory() as scratch:
        for index in range(config.rounds):
            row = {}
            for mode in (MODES if index % 2 == 0 else MODES[::-1]):
                run_dir = Path(scratch) / f"round{index}_{mode}"
                started = time.perf_counter()
                train_metacontroller(train_config, base_model, dstar, run_dir, progress=False,
                                     residual_table_max_bytes=None if mode == "table" else 0)
                wall = time.perf_counter() - started
                last = CsvLog(run_dir / "metrics.csv", ["step"]).read()[-1]
                row[mode] = {"train_s": float(last["elapsed_s"]), "wall_s": wall,
                             "s_per_step": float(last["elapsed_s"]) / config.steps,
                             "action_nll": float(last["action_nll"])}
            rounds.append(row)
    median = {mode: statistics.median(r[mode]["s_per_step"] for r in rounds) for mode in MODES}
    return {
        "preset": config.preset, "steps_per_round": config.steps, "batch_size": train_config.batch_size,
        "num_threads": config.num_threads, "dstar_episodes": episodes, "dstar_steps": dstar.n_steps,
        "controlled_layer": layer, "width": base_model.config.width, "table_build_s": build_s,
        "table_mib": (dstar.n_steps + 1) * base_model.config.width * 4 / 2**20,
        "rounds": rounds, "median_s_per_step": median,
        "speedup_table": median["recomputed"] / median["table"], **provenance(torch=torch.__version__),
    }


def format_table(report: dict[str, Any]) -> str:
    """The printed summary: median seconds per step of each mode, the table's build and speed-up."""
    rows = [[mode, f"{seconds:.3f}"] for mode, seconds in report["median_s_per_step"].items()]
    return markdown_table(
        f"grid `{report['preset']}` metacontroller, batch {report['batch_size']}, {report['num_threads']} thread(s), "
        f"D* {report['dstar_episodes']} episodes (median of {len(report['rounds'])} rounds of {report['steps_per_round']} steps)",
        ["lower residuals", "s/step"], rows,
        f"table build {report['table_build_s']:.1f} s ({report['table_mib']:.0f} MiB); "
        f"speed-up {report['speedup_table']:.2f}x",
    )


def main(config: LowerResidualsSpeedConfig) -> dict[str, Any]:
    return publish_report(time_lower_residuals(config), config, format_table)


if __name__ == "__main__":
    main(tyro.cli(LowerResidualsSpeedConfig))
