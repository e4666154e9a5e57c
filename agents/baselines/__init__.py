"""Baselines for the internal-RL comparison (SPEC A§7.1, B2 last bullet, B6).

- :mod:`agents.baselines.sb3_agents`: stock Stable-Baselines3 agents trained from scratch —
  ``RecurrentPPO`` on the raw observation (faithful) and ``PPO`` / ``DQN`` behind the
  :class:`hier_envs.wrappers.PrivilegedProgressWrapper` (privileged).

Submodules are imported on first use, so ``import agents.baselines`` does not pull in
Stable-Baselines3 (an optional ``bench`` dependency).
"""

from __future__ import annotations

from typing import Any

__all__ = ["train_sb3_baseline"]


def __getattr__(name: str) -> Any:
    if name == "train_sb3_baseline":
        from agents.baselines.sb3_agents import train_sb3_baseline

        return train_sb3_baseline
    raise AttributeError(f"module 'agents.baselines' has no attribute {name!r}")
