"""The manual-control script drives an episode from scripted key events (SPEC B2 rendering)."""

import pygame

from hier_envs import play as play_module


def test_play_scripted_keys(monkeypatch, capsys):
    script = [
        [pygame.event.Event(pygame.KEYDOWN, key=pygame.K_UP)],
        [pygame.event.Event(pygame.KEYDOWN, key=pygame.K_r)],
        [pygame.event.Event(pygame.KEYDOWN, key=pygame.K_LEFT)],
        [pygame.event.Event(pygame.QUIT)],
    ]
    monkeypatch.setattr(pygame.event, "get", lambda: script.pop(0) if script else [pygame.event.Event(pygame.QUIT)])
    play_module.main(["HierGrid-v0", "--seed", "0"])
    printed = capsys.readouterr().out
    assert printed.count("colors_visited=") == 2
    assert not script
