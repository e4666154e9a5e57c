"""What the timing benchmarks record beside their numbers, and how they publish them (SPEC B5, B6).

Every timing benchmark (``env_throughput``, ``ant_step_cost``, ``pretrain_speed``,
``internal_rl_throughput``, ``hawk_scan_speed``, ``lower_residuals_speed``, ``batch_assembly_speed``,
``sb3_checkpoint_cost``, ``dataset_generation_speed``) builds a JSON-ready report that ends with
:func:`provenance` (versions, machine, command line) and finish with
:func:`publish_report`: the command-line config is recorded in the report, a Markdown table is
printed, and the JSON is written atomically when ``config.out`` is set.
"""

from __future__ import annotations

import platform
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from agents.training_utils import machine_description
from hier_envs.atomic_io import write_json_atomic

__all__ = ["markdown_table", "provenance", "publish_report"]


def provenance(**extra_versions: str) -> dict[str, Any]:
    """``versions`` (Python, numpy, Gymnasium, then ``extra_versions``), ``machine`` and ``command``."""
    return {
        "versions": {
            "python": platform.python_version(),
            "numpy": np.__version__,
            "gymnasium": gym.__version__,
            **extra_versions,
        },
        "machine": machine_description(),
        "command": " ".join(sys.argv),
    }


def markdown_table(caption: str, header: Sequence[str], rows: Sequence[Sequence[str]], footer: str | None = None) -> str:
    """``caption``, a table with a left-aligned first column and right-aligned (numeric) others,
    then ``footer``; blank lines between. The printed summary of every timing benchmark."""
    for row in rows:
        if len(row) != len(header):
            raise ValueError(f"table row {list(row)!r} has {len(row)} cells, the header {list(header)!r} has {len(header)}")
    lines = [caption, "", "| " + " | ".join(header) + " |", "|---|" + "---:|" * (len(header) - 1)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines if footer is None else [*lines, "", footer])


def publish_report(
    report: dict[str, Any], config: Any, format_table: Callable[[dict[str, Any]], str]
) -> dict[str, Any]:
    """Add ``config`` (a dataclass with an ``out`` path or None) to ``report`` as JSON, print
    ``format_table(report)`` and write the report to ``config.out`` if set; returns the report."""
    report["config"] = {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(config).items()}
    print(format_table(report))
    if config.out is not None:
        write_json_atomic(config.out, report)
    return report
