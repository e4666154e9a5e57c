"""The ant-pinpad arena as MJCF, built in memory, and its MuJoCo renderers (SPEC A§2.2, B2).

:func:`build_arena_xml` adds to Gymnasium's Ant-v5 model (``ant.xml`` from the installed
Gymnasium package) the floor tiles, the wall blocks, the arena boundary and a top-down camera.
The env compiles the result once; resets only recolour tiles (:func:`tile_rgba`) and move the
wall blocks (SPEC §9.2 item 13).
"""

from __future__ import annotations

import math
import os
import warnings
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import gymnasium as gym
import mujoco
import numpy as np

from hier_envs.grid_layout import GridLayout
from hier_envs.rendering import WALL as WALL_RGB
from hier_envs.rendering import color_rgb

ANT_XML_PATH = Path(gym.__file__).parent / "envs" / "mujoco" / "assets" / "ant.xml"
"""Gymnasium's Ant-v5 model, the "classic MuJoCo ant" of SPEC A§2.2 (refs [20], [21])."""

WALL_BLOCK_HEIGHT = 0.5
"""Height (m) of the visual-only block drawn on each wall cell."""
BOUNDARY_HEIGHT = 1.5
BOUNDARY_THICKNESS = 0.1
TILE_GAP = 0.03
"""Gap (m) between floor tiles: the dark floor shows through as grid lines."""

FREE_TILE_RGBA = ((0.9, 0.9, 0.9, 1.0), (0.78, 0.78, 0.78, 1.0))
"""Checkerboard greys of the free cells."""
BOUNDARY_RGBA = (0.45, 0.45, 0.5, 0.35)
FLOOR_RGBA = (0.18, 0.18, 0.2, 1.0)
CAMERA_NAME = "arena_top"
"""The fixed top-down camera of ``rgb_array`` frames."""
CAMERA_FOVY = 45.0
CAMERA_MARGIN = 0.3
"""Floor (m) shown beyond the boundary walls on each side of the frame."""


def _fmt(*values: float) -> str:
    return " ".join(f"{v:.6g}" for v in values)


def build_arena_xml(grid_size: int, n_walls: int, cell_size: float, width: int, height: int) -> str:
    """The ant-pinpad MJCF: Ant-v5's ant plus floor tiles, wall blocks, boundary and camera.

    - ``tile_{r}_{c}``: one thin visual-only box per cell (recoloured at reset).
    - ``wall_block_{i}``: one visual-only block per wall (moved at reset). Walls have no
      physical geometry; entering one terminates the episode.
    - ``boundary_plane_{n,s,e,w}``: invisible planes on the arena's edges (geom group 3) that
      collide with the torso sphere only, through explicit ``<contact><pair>`` elements, so the
      torso centre never leaves the arena while legs neither start inside nor snag on them.
      Measured on ``mj_step`` with random actions, explicit pairs cost about 2%, whereas box
      walls matched through contype/conaffinity bits cost about 35%.
    - ``boundary_{n,s,e,w}``: translucent visual-only boxes that show the boundary.
    - ``arena_top``: a fixed top-down camera that shows the whole arena.
    """
    root = ET.parse(ANT_XML_PATH).getroot()
    half = grid_size * cell_size / 2
    visual = ET.SubElement(root, "visual")
    ET.SubElement(visual, "global", offwidth=str(width), offheight=str(height))
    ET.SubElement(visual, "quality", shadowsize="2048")
    ET.SubElement(visual, "headlight", ambient="0.35 0.35 0.35", diffuse="0.25 0.25 0.25", specular="0 0 0")
    asset, worldbody = root.find("asset"), root.find("worldbody")
    if asset is None or worldbody is None:  # pragma: no cover - the asset always has both
        raise RuntimeError(f"{ANT_XML_PATH} lacks <asset> or <worldbody>")
    ET.SubElement(asset, "material", name="matte", specular="0", shininess="0", reflectance="0")
    for light in worldbody.iter("light"):
        light.set("diffuse", "0.45 0.45 0.45")
    for geom in worldbody.iter("geom"):
        if geom.get("name") == "floor":
            geom.attrib.pop("material", None)
            geom.set("rgba", _fmt(*FLOOR_RGBA))
    visual_only = {"contype": "0", "conaffinity": "0", "type": "box", "material": "matte"}
    tile_half = cell_size / 2 - TILE_GAP / 2
    for row in range(grid_size):
        for col in range(grid_size):
            x, y = (col + 0.5) * cell_size - half, half - (row + 0.5) * cell_size
            tile = {"pos": _fmt(x, y, 0.0), "size": _fmt(tile_half, tile_half, 0.004), "rgba": _fmt(*FREE_TILE_RGBA[0])}
            ET.SubElement(worldbody, "geom", name=f"tile_{row}_{col}", **tile, **visual_only)
    wall_rgba = tuple(c / 255 for c in WALL_RGB) + (1.0,)
    for index in range(n_walls):
        block = {"pos": "0 0 -10", "size": _fmt(tile_half, tile_half, WALL_BLOCK_HEIGHT / 2), "rgba": _fmt(*wall_rgba)}
        ET.SubElement(worldbody, "geom", name=f"wall_block_{index}", **block, **visual_only)
    # One wall per side, keyed by its outward unit direction. A MuJoCo plane is solid on the side
    # opposite its normal, so a plane on the edge with an inward normal fills everything beyond.
    contact = ET.SubElement(root, "contact")
    thickness, long_side = BOUNDARY_THICKNESS, half + BOUNDARY_THICKNESS
    for name, (out_x, out_y) in {"n": (0, 1), "s": (0, -1), "e": (1, 0), "w": (-1, 0)}.items():
        centre = half + thickness / 2
        sx, sy = (long_side, thickness / 2) if out_x == 0 else (thickness / 2, long_side)
        wall = {
            "pos": _fmt(out_x * centre, out_y * centre, BOUNDARY_HEIGHT / 2),
            "size": _fmt(sx, sy, BOUNDARY_HEIGHT / 2),
            "rgba": _fmt(*BOUNDARY_RGBA),
        }
        ET.SubElement(worldbody, "geom", name=f"boundary_{name}", **wall, **visual_only)
        plane = {
            "type": "plane",
            "pos": _fmt(out_x * half, out_y * half, 0.0),
            "zaxis": _fmt(-out_x, -out_y, 0),
            "size": _fmt(half, BOUNDARY_HEIGHT / 2, 0.1),
            "contype": "0",
            "conaffinity": "0",
            "group": "3",
        }
        ET.SubElement(worldbody, "geom", name=f"boundary_plane_{name}", **plane)
        ET.SubElement(contact, "pair", geom1="torso_geom", geom2=f"boundary_plane_{name}")
    camera_z = (half + BOUNDARY_THICKNESS + CAMERA_MARGIN) / math.tan(math.radians(CAMERA_FOVY / 2))
    camera = {"pos": _fmt(0.0, 0.0, camera_z), "xyaxes": "1 0 0 0 1 0", "fovy": str(CAMERA_FOVY)}
    ET.SubElement(worldbody, "camera", name=CAMERA_NAME, **camera)
    return ET.tostring(root, encoding="unicode")


def tile_rgba(layout: GridLayout) -> np.ndarray:
    """``(cells, 4)`` tile colours of a layout: palette colours, dark walls, grey checkerboard."""
    rows, cols = np.divmod(np.arange(layout.grid_size**2), layout.grid_size)
    rgba = np.array(FREE_TILE_RGBA)[(rows + cols) % 2]
    for color, cell in enumerate(layout.color_cells()):
        rgba[cell] = (*(c / 255 for c in color_rgb(color)), 1.0)
    for cell in layout.wall_cells():
        rgba[cell] = (*(c / 255 for c in WALL_RGB), 1.0)
    return rgba


def offscreen_renderer(model: mujoco.MjModel, height: int, width: int) -> Any:
    """A ``mujoco.Renderer``, or a ``RuntimeError`` that says how to get a GL backend."""
    try:
        return mujoco.Renderer(model, height=height, width=width)
    except Exception as err:  # noqa: BLE001 - GL failures surface as several exception types
        backend = os.environ.get("MUJOCO_GL")
        raise RuntimeError(
            f"MuJoCo could not create an OpenGL context for rgb_array rendering (MUJOCO_GL={backend!r}): {err}. "
            "On a headless machine set MUJOCO_GL=egl (or osmesa) before importing mujoco, gymnasium or hier_envs."
        ) from err


def passive_viewer(model: mujoco.MjModel, data: mujoco.MjData) -> Any:
    """MuJoCo's passive viewer; checks for a display first (the viewer exits the process without one)."""
    try:
        import glfw
        import mujoco.viewer
    except ImportError as err:
        raise RuntimeError(f"render_mode='human' needs mujoco.viewer and glfw: {err}") from err
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        display_ok = glfw.init()
    if not display_ok:
        raise RuntimeError(
            "render_mode='human' needs a display (GLFW could not initialise; is DISPLAY set?); "
            "use render_mode='rgb_array' on a headless machine"
        )
    return mujoco.viewer.launch_passive(model, data)
