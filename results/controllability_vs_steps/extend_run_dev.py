"""Dev tool (session 20, not product code): seed a longer constant-learning-rate pretraining run
from a finished shorter one, instead of retraining its first steps.

With ``lr_schedule="constant"`` nothing in a pretraining step depends on ``train_steps``: the
batches come from the checkpointed RNG and the learning rate is constant. So the first N steps of
a run configured for M > N steps are the N-step run, bit for bit, and its ``latest.pt`` at step N
(model, optimiser, batch RNG) with the config's ``train_steps`` set to M is what a fresh M-step
run would hold there. ``agents.pretrain`` then resumes it like any interrupted run.

usage:
  python extend_run_dev.py check                       # the claim, on the smoke preset (exact weights)
  python extend_run_dev.py SRC_RUN_DIR DST_RUN_DIR M   # DST gets SRC's latest.pt + metrics.csv, config train_steps = M
  python extend_run_dev.py SRC_RUN_DIR DST_RUN_DIR M PRESET
      # the same, with snapshot_steps set to what `agents.pretrain --preset PRESET --train-steps M`
      # requests on resume (the preset's list up to M), for a SRC made when the preset listed others
      # (session 35: the ε = 0 runs predate the `default` preset's 12,000-step snapshot)
"""
import dataclasses
import shutil
import sys
import tempfile
from pathlib import Path

import torch

from agents.checkpoints import load_checkpoint, save_checkpoint
from agents.pretrain import BASE_MODEL_KIND, PRETRAIN_PRESETS, PretrainConfig, load_base_model, pretrain
from agents.models.base_models import base_model_config_from_dict


def extend(src: Path, dst: Path, steps: int, preset: str | None = None) -> None:
    record = load_checkpoint(src / "latest.pt", expected_kind=BASE_MODEL_KIND)
    config = dict(record["config"])
    if config.get("lr_schedule", "constant") != "constant":
        raise ValueError(f"{src}: only constant-learning-rate runs can be extended, got {config['lr_schedule']!r}")
    if steps <= record["step"]:
        raise ValueError(f"{src} is at step {record['step']}; the extended length must be larger, got {steps}")
    config["train_steps"] = steps
    if preset is None:
        config["snapshot_steps"] = [s for s in config["snapshot_steps"] if s <= record["step"]]
    elif preset not in PRETRAIN_PRESETS:
        raise ValueError(f"unknown pretraining preset {preset!r}; expected one of {sorted(PRETRAIN_PRESETS)}")
    else:  # agents.pretrain's CLI keeps the preset's snapshots up to --train-steps; past ones are not taken again
        config["snapshot_steps"] = [s for s in PRETRAIN_PRESETS[preset].snapshot_steps if s <= steps]
    PretrainConfig(**{**config, "model": base_model_config_from_dict(config["model"]),
                      "snapshot_steps": tuple(config["snapshot_steps"])})  # still a valid config
    dst.mkdir(parents=True, exist_ok=False)
    record["config"] = config
    save_checkpoint(dst / "latest.pt", record)
    shutil.copy(src / "metrics.csv", dst / "metrics.csv")


def check() -> None:
    from hier_envs.datasets import generate_grid_dataset

    data = generate_grid_dataset(60, 0.1, seed=0, progress=False)
    short = dataclasses.replace(PRETRAIN_PRESETS["smoke"], train_steps=20, eval_every=10, checkpoint_every=10,
                                snapshot_steps=())
    long = dataclasses.replace(short, train_steps=40)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        straight = pretrain(long, data, tmp / "straight", progress=False)
        pretrain(short, data, tmp / "short", progress=False)
        extend(tmp / "short", tmp / "extended", 40)
        extended = pretrain(long, data, tmp / "extended", progress=False)
        a, b = load_base_model(straight).state_dict(), load_base_model(extended).state_dict()
        same = all(torch.equal(a[k], b[k]) for k in a)
        print(f"40-step run == 20-step run extended to 40: {same}")
        assert same


if __name__ == "__main__":
    if sys.argv[1:] == ["check"]:
        check()
    elif len(sys.argv) in (4, 5):
        extend(Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]), *sys.argv[4:])
    else:
        raise SystemExit(__doc__)
