"""Baselines for the internal-RL comparison (SPEC A§7.1, B2 last bullet, B6).

- :mod:`agents.baselines.sb3_agents`: stock Stable-Baselines3 agents trained from scratch —
  ``RecurrentPPO`` on the raw observation (faithful) and ``PPO`` / ``DQN`` behind the
  :class:`hier_envs.wrappers.PrivilegedProgressWrapper` (privileged).
- :mod:`agents.baselines.raw_action_rl`: RL finetuning of the pretrained base model in raw
  action space with the internal-RL algorithm (SPEC A§7.1 item 1).
- :mod:`agents.baselines.compile_latent`: the adapted CompILE latent generator steering the
  same base model (SPEC A§7.1 item 2, Table A11).

Submodules are imported on first use, so ``import agents.baselines`` does not pull in
Stable-Baselines3 (an optional ``bench`` dependency).
"""

from __future__ import annotations

from typing import Any

_RAW_ACTION_RL_NAMES = ("RAW_ACTION_RL_PRESETS", "RawActionRLConfig", "train_raw_action_rl")
_COMPILE_NAMES = ("COMPILE_PRESETS", "CompileConfig", "CompileLatent", "CompileTrainConfig", "load_compile", "train_compile")

__all__ = [*_RAW_ACTION_RL_NAMES, *_COMPILE_NAMES, "train_sb3_baseline"]


def __getattr__(name: str) -> Any:
    if name == "train_sb3_baseline":
        from agents.baselines.sb3_agents import train_sb3_baseline

        return train_sb3_baseline
    if name in _RAW_ACTION_RL_NAMES:
        from agents.baselines import raw_action_rl

        return getattr(raw_action_rl, name)
    if name in _COMPILE_NAMES:
        from agents.baselines import compile_latent

        return getattr(compile_latent, name)
    raise AttributeError(f"module 'agents.baselines' has no attribute {name!r}")
