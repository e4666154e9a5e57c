"""Experts that generate the behaviour datasets (SPEC A§2.3, B3).

- :class:`GridExpert`: exact shortest-path policy for the gridworld pinpad with ε-noise
  (:mod:`hier_envs.experts.grid_expert`).
- :class:`AntExpert`: grid-level shortest-path planner + direction-conditioned locomotion
  policy for the ant pinpad (:mod:`hier_envs.experts.ant_expert`; the policy's weights ship in
  ``weights/`` and are trained by :mod:`hier_envs.experts.train_ant_locomotion`).

Names are imported lazily (PEP 562) so that ``python -m hier_envs.experts.grid_expert`` runs
its module once, without runpy's double-import warning.
"""

from __future__ import annotations

from typing import Any

_LAZY = {name: "hier_envs.experts.grid_expert" for name in ("GridExpert", "LayoutPlan", "evaluate_grid_expert")}
_LAZY.update({name: "hier_envs.experts.ant_expert" for name in ("AntExpert", "evaluate_ant_expert")})
__all__ = list(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
