"""The RG-LRU's chunked scan against a step-by-step loop (SPEC A§3.3, §9.2 item 14; B5 "performance").

Why: the Hawk SSM trains on whole ant episodes (hundreds of steps), and a Python loop of ``T``
recurrence steps is what a plain implementation does. :func:`agents.models.hawk.rg_lru_scan`
evaluates ``h_t = a_t ⊙ h_{t-1} + x_t`` in chunks with two cumulative sums each. This times a
forward + backward pass of both on the same random gates and inputs, in alternating order per
round, and records how far the loop's states and gradients are from the scan's.

    python benchmarks/hawk_scan_speed.py --out results/hawk_scan_speed.json
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # `python benchmarks/hawk_scan_speed.py`: make `import benchmarks` work
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import tyro
from torch import Tensor

from agents.models.hawk import SCAN_CHUNK, SCAN_MIN_LOG_A, rg_lru_scan
from agents.training_utils import check_non_negative_ints, check_positive_ints, set_threads
from benchmarks.timing_report import markdown_table, provenance, publish_report

IMPLEMENTATIONS = ("scan", "step_loop")


@dataclass(frozen=True)
class HawkScanSpeedConfig:
    """Command-line configuration."""

    batch_size: int = 32
    steps: int = 300
    """Sequence length T."""
    width: int = 128
    """Recurrence width R."""
    repeats: int = 5
    """Timed forward + backward passes per implementation and round."""
    rounds: int = 3
    num_threads: int = 1
    seed: int = 0
    out: Path | None = None
    """Optional JSON output path."""


def step_loop(log_a: Tensor, inputs: Tensor) -> Tensor:
    """The reference recurrence, one time step at a time in float32 (what the scan replaces)."""
    decay = log_a.clamp(min=SCAN_MIN_LOG_A).exp()
    h = inputs.new_zeros(inputs.shape[0], inputs.shape[2])
    states = []
    for t in range(inputs.shape[1]):
        h = decay[:, t] * h + inputs[:, t]
        states.append(h)
    return torch.stack(states, dim=1)


def _scan(log_a: Tensor, inputs: Tensor) -> Tensor:
    return rg_lru_scan(log_a, inputs)[0]


def _forward_backward(run: Callable[[Tensor, Tensor], Tensor], log_a: Tensor, inputs: Tensor,
                      weights: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    log_a, inputs = log_a.detach().requires_grad_(True), inputs.detach().requires_grad_(True)
    states = run(log_a, inputs)
    (states * weights).sum().backward()
    return states.detach(), log_a.grad, inputs.grad


def time_hawk_scan(config: HawkScanSpeedConfig) -> dict[str, Any]:
    """Median seconds per forward + backward pass of each implementation, and their differences."""
    check_positive_ints(config, ("batch_size", "steps", "width", "repeats", "rounds", "num_threads"))
    check_non_negative_ints(config, ("seed",))
    set_threads(config.num_threads)
    generator = torch.Generator().manual_seed(config.seed)
    shape = (config.batch_size, config.steps, config.width)
    # decays a = e^{log a} in about (0.37, 1), as the RG-LRU's gates give them, and unit inputs
    log_a = -torch.rand(shape, generator=generator)
    inputs = torch.randn(shape, generator=generator)
    weights = torch.randn(shape, generator=generator)  # a generic loss, so every gradient entry matters
    runs = {"scan": _scan, "step_loop": step_loop}
    results = {name: _forward_backward(run, log_a, inputs, weights) for name, run in runs.items()}  # warm-up
    differences = {
        "states": (results["scan"][0] - results["step_loop"][0]).abs().max().item(),
        "grad_log_a": (results["scan"][1] - results["step_loop"][1]).abs().max().item(),
        "grad_inputs": (results["scan"][2] - results["step_loop"][2]).abs().max().item(),
    }
    rounds = []
    for index in range(config.rounds):
        row = {}
        for name in (IMPLEMENTATIONS if index % 2 == 0 else IMPLEMENTATIONS[::-1]):
            started = time.perf_counter()
            for _ in range(config.repeats):
                _forward_backward(runs[name], log_a, inputs, weights)
            row[name] = (time.perf_counter() - started) / config.repeats
        rounds.append(row)
    median = {name: statistics.median(r[name] for r in rounds) for name in IMPLEMENTATIONS}
    return {
        "shape": {"batch": config.batch_size, "steps": config.steps, "width": config.width},
        "scan_chunk": SCAN_CHUNK, "num_threads": config.num_threads, "repeats": config.repeats,
        "rounds": rounds, "median_s": median, "speedup_scan": median["step_loop"] / median["scan"],
        "max_abs_difference": differences, **provenance(torch=torch.__version__),
    }


def format_table(report: dict[str, Any]) -> str:
    """The printed summary: median seconds per pass, the speed-up and the largest differences."""
    shape = report["shape"]
    rows = [[name, f"{seconds:.4f}"] for name, seconds in report["median_s"].items()]
    diff = report["max_abs_difference"]
    return markdown_table(
        f"RG-LRU forward + backward, B={shape['batch']} T={shape['steps']} R={shape['width']}, "
        f"{report['num_threads']} thread(s) (median of {len(report['rounds'])} rounds)",
        ["implementation", "s/pass"], rows,
        f"scan speed-up {report['speedup_scan']:.1f}x; largest difference: states {diff['states']:.1e}, "
        f"gradients {max(diff['grad_log_a'], diff['grad_inputs']):.1e}",
    )


def main(config: HawkScanSpeedConfig) -> dict[str, Any]:
    return publish_report(time_hawk_scan(config), config, format_table)


if __name__ == "__main__":
    main(tyro.cli(HawkScanSpeedConfig))
