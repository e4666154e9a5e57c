"""Size and write/read time of the Stable-Baselines3 baselines' whole-run checkpoints
(:mod:`agents.baselines.sb3_checkpoint`; SPEC B4 "resumable runs").

Why: a checkpoint of an off-policy baseline holds its replay buffer, and writing it costs
training time at every checkpoint; this sets how often :func:`~agents.baselines.sb3_agents.train_sb3_baseline`
can afford one. Each baseline is built as the benchmark builds it (its env, hyperparameters and
seed), trained for ``warmup_steps`` so that the envs are mid-episode and the buffer holds data,
then checkpointed once untimed (warm-up) and ``rounds`` times timed, each write followed by a
timed load, which therefore reads the archive from the page cache, as a resume right after a
save would. SB3 allocates a replay buffer whole at construction, so the archive has the size of
a full run's from the first save on.

    python benchmarks/sb3_checkpoint_cost.py --out results/sb3_checkpoint_cost.json
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # `python benchmarks/sb3_checkpoint_cost.py`: make `import benchmarks` work
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import statistics
import tempfile
import time
import zipfile
from dataclasses import dataclass
from typing import Any

import torch
import tyro

from agents.baselines.sb3_agents import SB3_ALGORITHMS, make_baseline_envs, resolve_hyperparams
from agents.baselines.sb3_checkpoint import load_sb3_checkpoint, save_sb3_checkpoint
from agents.training_utils import check_non_negative_ints, check_positive_ints, set_threads
from benchmarks.timing_report import markdown_table, provenance, publish_report


@dataclass(frozen=True)
class SB3CheckpointCostConfig:
    """Command-line configuration."""

    runs: tuple[str, ...] = ("dqn:HierGrid-v0", "recurrent_ppo:HierGrid-v0", "sac:HierAnt-v0")
    """``algo:env_id`` pairs, as ``run_all.py`` trains them."""
    warmup_steps: int = 2_000
    """Env steps trained before the first checkpoint."""
    rounds: int = 3
    """Checkpoint writes and loads timed per run."""
    seed: int = 0
    out: Path | None = None
    """Optional JSON output path."""


def _parse_run(run: str) -> tuple[str, str]:
    """``"algo:env_id"`` -> ``(algo, env_id)``; ``ValueError`` naming the entry otherwise."""
    algo, _, env_id = run.partition(":")
    if algo not in SB3_ALGORITHMS or not env_id:
        raise ValueError(f"run {run!r} must be 'algo:env_id' with algo in {sorted(SB3_ALGORITHMS)}")
    return algo, env_id


def measure_checkpoint(algo: str, env_id: str, config: SB3CheckpointCostConfig, scratch: Path) -> dict[str, Any]:
    """Archive size (and its replay-buffer member), median write and load seconds of one baseline."""
    hyperparams = resolve_hyperparams(algo, env_id)
    spec = SB3_ALGORITHMS[algo]
    envs = make_baseline_envs(env_id, hyperparams["n_envs"], config.seed, spec.privileged, {})
    kwargs = {k: v for k, v in hyperparams.items() if k not in ("n_envs", "policy")}
    try:
        model = spec.algorithm_class(hyperparams["policy"], envs, seed=config.seed, device="cpu", verbose=0, **kwargs)
        model.learn(config.warmup_steps)
        run_config = {"algo": algo, "env_id": env_id, "seed": config.seed}
        path = scratch / f"{algo}_{env_id}.zip"
        save_sb3_checkpoint(path, model, {"config": run_config})  # warm-up: first-touch costs are not timed
        writes, loads = [], []
        for _ in range(config.rounds):
            started = time.perf_counter()
            save_sb3_checkpoint(path, model, {"config": run_config})
            writes.append(time.perf_counter() - started)
            started = time.perf_counter()
            loaded, loaded_envs, _ = load_sb3_checkpoint(path, spec.algorithm_class, run_config)
            loads.append(time.perf_counter() - started)
            loaded_envs.close()
            del loaded
        with zipfile.ZipFile(path) as archive:
            members = {info.filename: info.file_size for info in archive.infolist()}
        result = {
            "algo": algo, "env_id": env_id, "warmup_steps": int(model.num_timesteps),
            "buffer_size": hyperparams.get("buffer_size"), "archive_bytes": path.stat().st_size,
            "member_bytes": members, "write_s": writes, "load_s": loads,
            "median_write_s": statistics.median(writes), "median_load_s": statistics.median(loads),
        }
        path.unlink()
        return result
    finally:
        envs.close()


def time_checkpoints(config: SB3CheckpointCostConfig) -> dict[str, Any]:
    """:func:`measure_checkpoint` for every ``algo:env_id`` of ``config.runs`` (1 torch thread, as
    the baselines train)."""
    if not config.runs:
        raise ValueError("SB3CheckpointCostConfig.runs is empty; name at least one 'algo:env_id'")
    pairs = [_parse_run(run) for run in config.runs]
    check_positive_ints(config, ("warmup_steps", "rounds"))
    check_non_negative_ints(config, ("seed",))
    set_threads(1)
    with tempfile.TemporaryDirectory() as scratch:
        results = [measure_checkpoint(algo, env_id, config, Path(scratch)) for algo, env_id in pairs]
    return {"checkpoints": results, **provenance(torch=torch.__version__)}


def format_table(report: dict[str, Any]) -> str:
    """The printed summary: archive and buffer sizes, median write and load seconds."""
    rows = [[f"{r['algo']} on {r['env_id']}", f"{r['archive_bytes'] / 1e6:.1f}",
             f"{r['member_bytes'].get('replay_buffer.pkl', 0) / 1e6:.1f}", f"{r['median_write_s']:.2f}",
             f"{r['median_load_s']:.2f}"] for r in report["checkpoints"]]
    return markdown_table("SB3 whole-run checkpoints (median of the timed rounds)",
                          ["baseline", "MB", "replay buffer MB", "write s", "load s"], rows)


def main(config: SB3CheckpointCostConfig) -> dict[str, Any]:
    return publish_report(time_checkpoints(config), config, format_table)


if __name__ == "__main__":
    main(tyro.cli(SB3CheckpointCostConfig))
