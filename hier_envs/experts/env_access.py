"""How an expert reaches the env it acts on (SPEC B3: experts are privileged, they read state)."""

from __future__ import annotations

from typing import Any, TypeVar

EnvT = TypeVar("EnvT")


def started_env(env: Any, env_class: type[EnvT], expert: str) -> EnvT:
    """The ``env_class`` instance under ``env`` (gym wrappers accepted), after a reset.

    ``TypeError`` names the expected class when ``env`` is another env; ``RuntimeError`` when it
    has not been reset (no layout or task progress yet).
    """
    raw = getattr(env, "unwrapped", env)
    if not isinstance(raw, env_class):
        raise TypeError(f"the {expert} needs a {env_class.__name__} (or a wrapper of one), got {env!r}")
    if raw.layout is None or raw.progress is None:
        raise RuntimeError("call env.reset() before asking the expert for an action")
    return raw
