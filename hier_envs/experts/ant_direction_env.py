"""``AntDirectionEnv``: walk the ant in a commanded direction on open floor (SPEC B3).

The training env of the ant expert's locomotion policy. It is *not* a benchmark env and is not
registered: the expert learns here to turn a world-frame direction into torques, and the
grid-level planner of :mod:`hier_envs.experts.ant_expert` supplies that direction on
``HierAnt``. The physics are ``HierAnt``'s: Gymnasium's ``ant.xml``, frame skip 5 (0.05 s per
step), the same start-state noise, and "fell" on a torso height outside [0.2, 1.0] or a
non-finite position. ``HierAnt`` also counts MuJoCo's bad-acceleration warning and a non-finite
velocity as a fall; this training env does not check those.

Each episode commands a uniformly random direction and redraws it every 40–160 steps, so the
policy also learns to change course, which the planner asks for at every cell boundary. The
reward is dense and used only here: ``v_xy · d`` (speed along the command)
``− lateral_cost_weight · |v_xy × d|`` (speed across it: the planner needs the ant to go where
it is sent, not only to make progress) ``+ 1`` per step alive ``− 0.5 · |a|²`` (Ant-v5's
control cost); a fall terminates the episode.

Without the lateral term (first training run, 1M PPO steps) the ant walked at about 1 m/s along
the command but drifted 0.45 m/s across it, and in ``HierAnt`` most failures were drifts into a
wrong colour or the wall cell.
"""

from __future__ import annotations

import math
from typing import Any

import gymnasium as gym
import mujoco
import numpy as np
from gymnasium import spaces

from hier_envs.ant import HEALTHY_Z_RANGE, INIT_TORSO_Z, RESET_NOISE_SCALE, validate_ant_action
from hier_envs.ant_arena import ANT_XML_PATH
from hier_envs.experts.ant_locomotion import N_FEATURES, locomotion_features

FRAME_SKIP = 5
HEALTHY_REWARD = 1.0
CTRL_COST_WEIGHT = 0.5
COMMAND_PERIOD = (40, 160)
"""A new direction is drawn after a uniform number of steps in this range (inclusive)."""


class AntDirectionEnv(gym.Env):
    """Open-floor ant that is rewarded for walking along a commanded direction.

    Observation: :func:`~hier_envs.experts.ant_locomotion.locomotion_features` (28 floats,
    heading frame). Action: 8 torques in [-1, 1] as in ``HierAnt``. ``info["direction"]`` is the
    world-frame command and ``info["velocity_along"]`` the speed along it (m/s).
    """

    metadata = {"render_modes": []}

    def __init__(self, max_steps: int = 500, lateral_cost_weight: float = 1.0) -> None:
        if isinstance(max_steps, bool) or not isinstance(max_steps, int) or max_steps < 1:
            raise ValueError(f"max_steps must be an int >= 1, got {max_steps!r}")
        if not isinstance(lateral_cost_weight, (int, float)) or not 0.0 <= lateral_cost_weight < float("inf"):
            raise ValueError(f"lateral_cost_weight must be a number >= 0, got {lateral_cost_weight!r}")
        self.max_steps = max_steps
        self.lateral_cost_weight = float(lateral_cost_weight)
        self.model = mujoco.MjModel.from_xml_path(str(ANT_XML_PATH))
        self.data = mujoco.MjData(self.model)
        self.observation_space = spaces.Box(-np.inf, np.inf, (N_FEATURES,), np.float32)
        self.action_space = spaces.Box(-1.0, 1.0, (self.model.nu,), np.float32)
        self.direction = np.array([1.0, 0.0])
        self.steps = 0
        self.next_command = 0

    def _draw_command(self) -> None:
        angle = self.np_random.uniform(-math.pi, math.pi)
        self.direction = np.array([math.cos(angle), math.sin(angle)])
        self.next_command = self.steps + int(self.np_random.integers(COMMAND_PERIOD[0], COMMAND_PERIOD[1] + 1))

    def _obs(self) -> np.ndarray:
        return locomotion_features(self.data.qpos, self.data.qvel, self.direction).astype(np.float32)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        rng, model, data = self.np_random, self.model, self.data
        mujoco.mj_resetData(model, data)
        yaw = rng.uniform(-math.pi, math.pi)
        qpos = np.zeros(model.nq)
        qpos[:7] = (0.0, 0.0, INIT_TORSO_Z, math.cos(yaw / 2), 0.0, 0.0, math.sin(yaw / 2))
        qpos[7:] = rng.uniform(-RESET_NOISE_SCALE, RESET_NOISE_SCALE, size=model.nq - 7)
        data.qpos[:] = qpos
        data.qvel[:] = rng.uniform(-RESET_NOISE_SCALE, RESET_NOISE_SCALE, size=model.nv)
        mujoco.mj_forward(model, data)
        self.steps = 0
        self._draw_command()
        return self._obs(), {"direction": self.direction.copy()}

    def step(self, action: object):
        ctrl = validate_ant_action(action, self.model.nu)
        data = self.data
        xy_before = data.qpos[:2].copy()
        data.ctrl[:] = ctrl
        mujoco.mj_step(self.model, data, nstep=FRAME_SKIP)
        self.steps += 1
        velocity = (data.qpos[:2] - xy_before) / (FRAME_SKIP * self.model.opt.timestep)
        along = float(velocity @ self.direction)
        across = float(velocity[1] * self.direction[0] - velocity[0] * self.direction[1])
        low, high = HEALTHY_Z_RANGE
        fell = not (low <= data.qpos[2] <= high) or not np.isfinite(data.qpos).all()
        reward = (along - self.lateral_cost_weight * abs(across) + (0.0 if fell else HEALTHY_REWARD)
                  - CTRL_COST_WEIGHT * float(ctrl @ ctrl))
        info = {"direction": self.direction.copy(), "velocity_along": along, "velocity_across": across}
        if self.steps >= self.next_command:
            self._draw_command()
        truncated = not fell and self.steps >= self.max_steps
        return self._obs(), reward, fell, truncated, info
