"""Shared trainer utilities (agents/training_utils.py): numeric config checks across the configs."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from agents.baselines.compile_latent import CompileTrainConfig
from agents.controllers import ControllerConfig
from agents.internal_rl import InternalRLConfig
from agents.pretrain import PretrainConfig
from agents.probes import ProbeConfig
from agents.train_metacontroller import MetacontrollerTrainConfig


@pytest.mark.parametrize("config_class, field, value, error", [
    (PretrainConfig, "learning_rate", 0.0, ValueError), (PretrainConfig, "learning_rate", float("nan"), ValueError),
    (PretrainConfig, "learning_rate", float("inf"), ValueError), (PretrainConfig, "learning_rate", "3e-4", TypeError),
    (PretrainConfig, "weight_decay", -0.1, ValueError), (PretrainConfig, "weight_decay", float("nan"), ValueError),
    (PretrainConfig, "obs_loss_weight", -1.0, ValueError), (PretrainConfig, "obs_loss_weight", None, TypeError),
    (PretrainConfig, "lr_final_fraction", "0.1", TypeError), (PretrainConfig, "lr_final_fraction", 1.5, ValueError),
    (PretrainConfig, "val_fraction", True, TypeError), (PretrainConfig, "val_fraction", 1.0, ValueError),
    (ControllerConfig, "learning_rate", -1e-3, ValueError), (ControllerConfig, "weight_decay", "0.03", TypeError),
    (ProbeConfig, "learning_rate", float("nan"), ValueError), (ProbeConfig, "val_fraction", 0.0, ValueError),
    (InternalRLConfig, "switch_threshold", 0.0, ValueError), (InternalRLConfig, "clip_ratio", "0.2", TypeError),
    (InternalRLConfig, "advantage_eps", 0.0, ValueError), (InternalRLConfig, "learning_rate", float("inf"), ValueError),
    (CompileTrainConfig, "learning_rate", float("inf"), ValueError), (CompileTrainConfig, "weight_decay", "0", TypeError),
    (MetacontrollerTrainConfig, "switch_learning_rate_scale", float("inf"), ValueError),
])
def test_bad_numeric_config_values_name_the_field(config_class, field, value, error):
    with pytest.raises(error, match=rf"{config_class.__name__}\.{field} must be"):
        config_class(**{field: value})


def test_numeric_config_values_accept_ints_and_numpy_floats():
    assert PretrainConfig(learning_rate=np.float64(1e-3), weight_decay=0).learning_rate == 1e-3
    assert InternalRLConfig(switch_threshold=1).switch_threshold == 1


def test_resolve_device_accepts_the_cpu():
    import torch

    from agents.training_utils import resolve_device

    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")


@pytest.mark.parametrize("device, error, match", [
    ("banana", ValueError, "'banana' is not a torch device"),
    ("meta", ValueError, "only cpu, cuda and mps"),
    (0, TypeError, "device must be a str or torch.device, got int"),
    (None, TypeError, "got NoneType"),
])
def test_resolve_device_refuses_what_is_not_a_training_device(device, error, match):
    from agents.training_utils import resolve_device

    with pytest.raises(error, match=match):
        resolve_device(device)


def test_resolve_device_refuses_a_gpu_this_machine_lacks():
    import torch

    from agents.training_utils import resolve_device

    if torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA device"):
            resolve_device(f"cuda:{torch.cuda.device_count()}")
    else:
        with pytest.raises(ValueError, match="'cuda': CUDA is not available here"):
            resolve_device("cuda")


def test_machine_description_names_the_cpu_kernels_results_depend_on():
    """SPEC B5: a seeded run reproduces bit for bit only on the same kind of CPU, so results record it."""
    from agents.training_utils import machine_description

    machine = machine_description()
    assert machine["cpu_count"] >= 1 and machine["platform"]
    assert machine["torch_cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    assert all(flag.startswith(("avx", "amx", "fma", "f16c")) for flag in machine["cpu_vector_flags"])
    assert machine["cpu_vector_flags"] == sorted(machine["cpu_vector_flags"])
    assert 1 <= machine["usable_cpus"] <= machine["cpu_count"]
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists() and " avx" in cpuinfo.read_text():  # x86 Linux: the flags are read, not left empty
        assert "avx" in machine["cpu_vector_flags"] and machine["cpu_model"]
    json.dumps(machine)  # stored in results.json
