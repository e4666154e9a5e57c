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


def test_arrows_after_the_episode_ended_wait_for_reset(monkeypatch, capsys):
    """Pressing an arrow once the episode is over is ignored (the env refuses to step a finished
    episode) until 'r' starts a new one."""
    script = [[pygame.event.Event(pygame.KEYDOWN, key=pygame.K_UP)] for _ in range(120)]  # ends by step 100
    script += [[pygame.event.Event(pygame.KEYDOWN, key=pygame.K_r)], [pygame.event.Event(pygame.KEYDOWN, key=pygame.K_LEFT)]]
    monkeypatch.setattr(pygame.event, "get", lambda: script.pop(0) if script else [pygame.event.Event(pygame.QUIT)])
    monkeypatch.setattr(pygame.time, "wait", lambda ms: None)
    play_module.main(["HierGrid-v0", "--seed", "0"])
    printed = capsys.readouterr().out
    before_end, end, after_end = printed.partition("- press r to reset")
    assert end and "press r" not in after_end
    assert 1 <= before_end.count("colors_visited=") < 120  # the presses after the end were not steps
    assert after_end.count("colors_visited=") == 1  # the move after 'r'
    assert not script
