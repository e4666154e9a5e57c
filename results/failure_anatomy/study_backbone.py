"""Shared by this folder's dev scripts: the study run dir's frozen backbone and its layer-``layer``
ground-truth controllers (environment: RUN_DIR, default runs/grid_default; THREADS, default 1)."""
import os
from pathlib import Path

import torch

from agents.controllers import load_subgoal_controllers
from agents.models.controller import freeze
from agents.pretrain import load_base_model


def load_study_backbone(layer: int):
    """``(run_dir, model, controllers)``; the controllers are checked against the backbone."""
    torch.set_num_threads(int(os.environ.get("THREADS", "1")))
    run_dir = Path(os.environ.get("RUN_DIR", "runs/grid_default"))
    model = freeze(load_base_model(run_dir / "base_model" / "model.pt"))
    model.eval()
    controllers = load_subgoal_controllers(run_dir / "controllers" / f"layer_{layer}.pt", model.config.width,
                                           expect_layer=layer, expect_base_model=model)
    return run_dir, model, controllers
