"""pygame rendering of the grid pinpad (SPEC B2 "Rendering").

Colours are drawn as filled cells with their id printed on them, so a screenshot is readable
without a legend; walls are dark grey, the agent a white disc with a black rim. A status line
under the grid shows the task, with visited colours struck through — for people, never an
input to an agent. ``rgb_array`` draws on an off-screen surface and needs no video driver;
``human`` opens a window with whatever driver the process has (headless: set
``SDL_VIDEODRIVER=dummy`` yourself). The renderer never changes the process environment, so an
``rgb_array`` env cannot turn later ``human`` windows into invisible dummy ones.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from hier_envs.grid_layout import GridLayout
from hier_envs.tasks import TaskProgress

COLOR_RGB: tuple[tuple[int, int, int], ...] = (
    (230, 25, 75),  # 0 red
    (245, 130, 48),  # 1 orange
    (255, 225, 25),  # 2 yellow
    (60, 180, 75),  # 3 green
    (70, 240, 240),  # 4 cyan
    (0, 130, 200),  # 5 blue
    (145, 30, 180),  # 6 purple
    (240, 50, 230),  # 7 magenta
    (128, 128, 0),  # 8 olive (only for envs with more than 8 colours)
    (170, 110, 40),  # 9 brown
)
"""Distinct colours (Sasha Trubetskoy's palette) for colour ids 0, 1, …"""

BACKGROUND = (245, 245, 245)
GRID_LINE = (200, 200, 200)
WALL = (60, 60, 60)
CELL_PIXELS = 64
STATUS_PIXELS = 40


def color_rgb(color: int) -> tuple[int, int, int]:
    """RGB of a colour id; ids past the palette cycle through it."""
    return COLOR_RGB[color % len(COLOR_RGB)]


def text_color_for(rgb: tuple[int, int, int]) -> tuple[int, int, int]:
    """Black on light fills, white on dark ones (relative luminance)."""
    luminance = 0.2126 * rgb[0] + 0.7152 * rgb[1] + 0.0722 * rgb[2]
    return (0, 0, 0) if luminance > 140 else (255, 255, 255)


class GridRenderer:
    """Draws a grid layout, the agent and the task status with pygame."""

    def __init__(self, grid_size: int, n_colors: int, render_mode: str, render_fps: int) -> None:
        import pygame

        pygame.font.init()  # not pygame.init(): no display (rgb_array) and no audio device is needed
        self.pygame = pygame
        self.grid_size = grid_size
        self.render_mode = render_mode
        self.render_fps = render_fps
        self.size = (grid_size * CELL_PIXELS, grid_size * CELL_PIXELS + STATUS_PIXELS)
        self.surface = pygame.Surface(self.size)
        self.cell_font = pygame.font.Font(None, int(CELL_PIXELS * 0.7))
        self.status_font = pygame.font.Font(None, 26)
        self.window: Any = None
        self.clock: Any = None

    def draw(
        self,
        layout: GridLayout,
        agent: tuple[int, int],
        progress: TaskProgress,
        step_count: int,
        max_steps: int,
    ) -> np.ndarray | None:
        pygame = self.pygame
        surface = self.surface
        surface.fill(BACKGROUND)
        size = CELL_PIXELS
        for row, col in layout.walls:
            pygame.draw.rect(surface, WALL, (col * size, row * size, size, size))
        for color, (row, col) in enumerate(layout.colors):
            rgb = color_rgb(color)
            pygame.draw.rect(surface, rgb, (col * size, row * size, size, size))
            label = self.cell_font.render(str(color), True, text_color_for(rgb))
            surface.blit(label, label.get_rect(center=(col * size + size // 2, row * size + size // 2)))
        for i in range(self.grid_size + 1):
            pygame.draw.line(surface, GRID_LINE, (i * size, 0), (i * size, self.grid_size * size))
            pygame.draw.line(surface, GRID_LINE, (0, i * size), (self.grid_size * size, i * size))
        center = (agent[1] * size + size // 2, agent[0] * size + size // 2)
        pygame.draw.circle(surface, (0, 0, 0), center, size // 4 + 3)
        pygame.draw.circle(surface, (255, 255, 255), center, size // 4)
        self._draw_status(progress, step_count, max_steps)
        if self.render_mode == "human":
            if self.window is None:
                pygame.display.init()
                pygame.display.set_caption("HierGrid")
                self.window = pygame.display.set_mode(self.size)
                self.clock = pygame.time.Clock()
            self.window.blit(surface, (0, 0))
            pygame.event.pump()
            pygame.display.flip()
            self.clock.tick(self.render_fps)
            return None
        return np.transpose(pygame.surfarray.array3d(surface), (1, 0, 2)).copy()

    def _draw_status(self, progress: TaskProgress, step_count: int, max_steps: int) -> None:
        top = self.grid_size * CELL_PIXELS
        x = 8
        for position, color in enumerate(progress.task):
            rgb = color_rgb(color)
            text = self.status_font.render(str(color), True, rgb if position >= progress.colors_visited else GRID_LINE)
            rect = text.get_rect(midleft=(x, top + STATUS_PIXELS // 2))
            self.surface.blit(text, rect)
            if position < progress.colors_visited:
                self.pygame.draw.line(self.surface, (90, 90, 90), rect.midleft, rect.midright, 2)
            x = rect.right + 8
        if progress.success:
            state = "success"
        elif progress.failed:
            state = "wrong colour"
        else:
            state = f"step {step_count}/{max_steps}"
        label = self.status_font.render(state, True, (40, 40, 40))
        self.surface.blit(label, label.get_rect(midright=(self.size[0] - 8, top + STATUS_PIXELS // 2)))

    def close(self) -> None:
        if self.window is not None:
            self.pygame.display.quit()
            self.window = None
