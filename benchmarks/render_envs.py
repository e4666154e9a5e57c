"""Save one ``rgb_array`` frame of each env as a PNG, for the README and for looking at (SPEC B2).

    MUJOCO_GL=egl python benchmarks/render_envs.py --seed 3 --out results

writes ``hiergrid_render.png`` and ``hierant_render.png`` (the start of a ``HierGrid-v0`` and a
``HierAnt-v0`` episode, plus, for the ant, the frame after ``--ant-steps`` steps of the ant
expert as ``hierant_render_expert.png`` when its weights are installed) and prints each layout,
so the picture can be checked against it.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

if __package__ in (None, ""):  # `python benchmarks/render_envs.py`: make `import hier_envs` work
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

os.environ.setdefault("MUJOCO_GL", "egl")

import gymnasium as gym
import numpy as np

import hier_envs  # noqa: F401  (registers the ids)


def save_png(frame: np.ndarray, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path.parent.mkdir(parents=True, exist_ok=True)
    plt.imsave(path, frame)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("results"))
    parser.add_argument("--ant-steps", type=int, default=60)
    args = parser.parse_args(argv)

    for env_id, name in (("HierGrid-v0", "hiergrid_render.png"), ("HierAnt-v0", "hierant_render.png")):
        env = gym.make(env_id, render_mode="rgb_array")
        _, info = env.reset(seed=args.seed)
        save_png(env.render(), args.out / name)
        print(f"{env_id}: {env.unwrapped.layout}, task {info['task']} -> {args.out / name}")
        if env_id.startswith("HierAnt"):
            try:
                from hier_envs.experts.ant_expert import AntExpert

                expert = AntExpert(deterministic=True)
            except FileNotFoundError as err:
                print(f"skipping the expert frame: {err}")
            else:
                for _ in range(args.ant_steps):
                    _, _, terminated, truncated, info = env.step(expert.act(env))
                    if terminated or truncated:
                        break
                path = args.out / "hierant_render_expert.png"
                save_png(env.render(), path)
                print(f"  after {env.unwrapped.step_count} expert steps: cell {info['cell']}, "
                      f"colours visited {info['colors_visited']} -> {path}")
        env.close()


if __name__ == "__main__":
    main()
