"""Play a grid pinpad episode with the arrow keys: ``python -m hier_envs.play HierGrid-v0``.

Like Minigrid's manual control: arrows move, ``r`` resets, ``Esc`` or closing the window quits.
The window shows the task under the grid; visited colours are struck through. Once an episode
has ended, arrows are ignored (the env refuses to step a finished episode) until ``r``.
"""

from __future__ import annotations

import argparse

import gymnasium as gym

import hier_envs  # noqa: F401  (registers the ids)

KEY_TO_ACTION = {"up": 0, "right": 1, "down": 2, "left": 3}


def play(env_id: str, seed: int | None = None) -> None:
    """Open a window and map arrow keys to actions until the user quits."""
    import pygame

    env = gym.make(env_id, render_mode="human")
    env.reset(seed=seed)
    episode_over = False
    pygame.key.set_repeat(250, 100)
    keys = {pygame.K_UP: "up", pygame.K_RIGHT: "right", pygame.K_DOWN: "down", pygame.K_LEFT: "left"}
    running = True
    while running:
        for event in pygame.event.get():
            if event.type == pygame.QUIT or (event.type == pygame.KEYDOWN and event.key == pygame.K_ESCAPE):
                running = False
            elif event.type == pygame.KEYDOWN and event.key == pygame.K_r:
                env.reset()
                episode_over = False
            elif event.type == pygame.KEYDOWN and event.key in keys and not episode_over:
                _, reward, terminated, truncated, info = env.step(KEY_TO_ACTION[keys[event.key]])
                print(f"step reward={reward} colors_visited={info['colors_visited']} failure={info['failure']}")
                if terminated or truncated:
                    episode_over = True
                    print("success!" if info["success"] else "episode over", "- press r to reset")
        pygame.time.wait(10)
    env.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("env_id", nargs="?", default="HierGrid-v0", help="a HierGrid-* id")
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args(argv)
    if not args.env_id.startswith("HierGrid"):
        raise SystemExit(f"play supports the HierGrid-* ids, got {args.env_id!r}")
    play(args.env_id, args.seed)


if __name__ == "__main__":
    main()
