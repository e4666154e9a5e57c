"""Test-wide settings (headless rendering, single-threaded torch: the machine has 2 cores) and
shared fixtures."""

import os

import pytest

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
os.environ.setdefault("MUJOCO_GL", "egl")

try:
    import torch

    torch.set_num_threads(1)
except ImportError:  # pragma: no cover - torch is a hard dependency, keep collection robust
    pass


@pytest.fixture(scope="session")
def smoke_base_model_path(tmp_path_factory):
    """A random smoke-size base model (seed 0) in the checkpoint format :func:`agents.pretrain.pretrain` writes."""
    from agents.checkpoints import save_checkpoint
    from agents.models.transformer import TRANSFORMER_PRESETS, CausalTransformer
    from agents.pretrain import BASE_MODEL_KIND

    torch.manual_seed(0)
    model = CausalTransformer(TRANSFORMER_PRESETS["smoke"])
    path = tmp_path_factory.mktemp("base") / "model.pt"
    save_checkpoint(path, {"kind": BASE_MODEL_KIND, "model": model.state_dict(), "optimizer": None, "step": 0,
                           "config": {"model": model.config.to_dict()}})
    return path
