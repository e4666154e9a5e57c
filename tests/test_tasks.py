"""Task tables and validation (SPEC A§2.1, A§2.2, B2.1, §9.2 item 12)."""

import numpy as np
import pytest

from hier_envs.tasks import (
    ANT_POSTTRAIN_TASK,
    ANT_PRETRAIN_TASKS,
    GRID_POSTTRAIN_TASK,
    GRID_PRETRAIN_TASKS,
    TaskProgress,
    draw_task_index,
    grid_composition_task_sets,
    grid_subgoal,
    grid_subgoal_sequence,
    grid_subgoal_transitions,
    grid_subgoal_walk_tasks,
    resolve_tasks,
    validate_task,
)


TABLE_A1 = (
    (0, 1, 4, 5, 0, 1), (0, 1, 4, 5, 2, 3), (0, 1, 6, 7, 2, 3), (2, 3, 0, 1, 4, 5),
    (2, 3, 6, 7, 2, 3), (2, 3, 6, 7, 4, 5), (4, 5, 0, 1, 4, 5), (4, 5, 0, 1, 6, 7),
    (4, 5, 2, 3, 6, 7), (6, 7, 2, 3, 0, 1), (6, 7, 2, 3, 6, 7), (6, 7, 4, 5, 0, 1),
    (0, 1, 6, 7, 4, 5), (2, 3, 0, 1, 6, 7), (4, 5, 2, 3, 0, 1), (6, 7, 4, 5, 2, 3),
)
"""Table A1 as printed in SPEC A§2.1, read row by row, copied here by hand (not from the code)."""

TABLE_A2 = (
    (0, 3, 2), (1, 0, 3), (2, 1, 0), (3, 2, 1), (0, 2, 0), (0, 2, 1), (0, 3, 1), (1, 0, 2),
    (1, 3, 1), (1, 3, 2), (2, 0, 2), (2, 0, 3), (2, 1, 3), (3, 1, 0), (3, 1, 3), (3, 2, 0),
)
"""Table A2 as printed in SPEC A§2.2, read row by row, copied here by hand (not from the code)."""


def test_table_a1_verbatim():
    """SPEC A§2.1 Table A1 and §9.2 item 12: all 16 grid pretraining tasks, in the table's order,
    and the post-training task A-B-C-D-A-B, exactly."""
    assert GRID_PRETRAIN_TASKS == TABLE_A1
    assert GRID_POSTTRAIN_TASK == (0, 1, 2, 3, 4, 5, 6, 7, 0, 1, 2, 3)


def test_posttraining_transitions_are_novel():
    """SPEC A§2.1: A→B, B→C, C→D, D→A never occur in pretraining."""
    seen = set()
    for task in GRID_PRETRAIN_TASKS:
        subgoals = [grid_subgoal(c) for c in task[::2]]
        seen.update(zip(subgoals, subgoals[1:]))
        assert all(task[i] + 1 == task[i + 1] and task[i] % 2 == 0 for i in range(0, 6, 2))
    post = [grid_subgoal(c) for c in GRID_POSTTRAIN_TASK[::2]]
    assert not seen & set(zip(post, post[1:]))


def test_table_a2_verbatim():
    """SPEC A§2.2 Table A2 and §9.2 item 12: all 16 ant pretraining tasks, in the table's order,
    and the post-training task 0-1-2-3, exactly; none of 0→1, 1→2, 2→3, 3→0 occurs in pretraining."""
    assert ANT_PRETRAIN_TASKS == TABLE_A2
    assert ANT_POSTTRAIN_TASK == (0, 1, 2, 3)
    transitions = {pair for task in ANT_PRETRAIN_TASKS for pair in zip(task, task[1:])}
    assert not transitions & {(0, 1), (1, 2), (2, 3), (3, 0)}


@pytest.mark.parametrize(
    "task, error, fragment",
    [
        ([0, 9], ValueError, "colour 9"),
        ([], ValueError, "empty"),
        ([0, 1.5], ValueError, "1.5"),
        ([0, "1"], ValueError, "'1'"),
        ([0, True], ValueError, "True"),
        ([2, 2], ValueError, "twice"),
        ([-1], ValueError, "-1"),
        ("01", TypeError, "'01'"),
        (5, TypeError, "5"),
    ],
)
def test_validate_task_rejects(task, error, fragment):
    with pytest.raises(error, match=fragment):
        validate_task(task, 8)


def test_validate_task_accepts_numpy():
    assert validate_task(np.array([0, 1, 2]), 8) == (0, 1, 2)
    assert validate_task((np.int64(3), 4), 8) == (3, 4)


def test_progress_rules():
    progress = TaskProgress((0, 1, 0))
    assert progress.next_color == 0
    assert progress.enter(0) and progress.next_color == 1
    assert progress.enter(1) and not progress.success
    assert progress.enter(0) and progress.success and progress.next_color is None
    failing = TaskProgress((0, 1))
    assert not failing.enter(1)
    assert failing.failed and failing.done and not failing.success


def test_resolve_tasks_and_draw_task_index():
    assert resolve_tasks(None, None, 4, ANT_POSTTRAIN_TASK) == (ANT_POSTTRAIN_TASK,)
    assert resolve_tasks([2, 0], None, 4, ANT_POSTTRAIN_TASK) == ((2, 0),)
    assert resolve_tasks(None, ANT_PRETRAIN_TASKS, 4, ANT_POSTTRAIN_TASK) == ANT_PRETRAIN_TASKS
    with pytest.raises(ValueError, match="not both"):
        resolve_tasks([0], [[0]], 4, ANT_POSTTRAIN_TASK)
    rng = np.random.default_rng(0)
    before = rng.bit_generator.state
    assert draw_task_index(1, rng) == 0
    assert rng.bit_generator.state == before  # one task: the stream is not touched
    draws = [draw_task_index(16, rng) for _ in range(200)]
    reference = np.random.default_rng(0)
    assert draws == [int(reference.integers(16)) for _ in range(200)]  # one rng.integers(n) per draw
    assert set(draws) == set(range(16))


def test_grid_subgoal_transitions_match_spec():
    """SPEC A§2.1 (INFERRED from Table A1): pretraining has exactly A→C, A→D, B→A, B→D, C→A, C→B, D→B, D→C."""
    assert grid_subgoal_sequence((0, 1, 4, 5, 0, 1)) == (0, 2, 0)
    assert grid_subgoal_transitions(GRID_PRETRAIN_TASKS) == {(0, 2), (0, 3), (1, 0), (1, 3), (2, 0), (2, 1), (3, 1), (3, 2)}
    with pytest.raises(ValueError, match="subgoal pairs"):
        grid_subgoal_sequence((0, 2))


def test_grid_composition_task_sets():
    sets = grid_composition_task_sets()
    seen = grid_subgoal_transitions(GRID_PRETRAIN_TASKS)
    pools = list(sets.values())
    assert pools[0] == GRID_PRETRAIN_TASKS and pools[3] == (GRID_POSTTRAIN_TASK,)
    # unseen, 3 subgoals: the four rotations of A-B-C-D, none of whose transitions occur in pretraining
    assert pools[1] == ((0, 1, 2, 3, 4, 5), (2, 3, 4, 5, 6, 7), (4, 5, 6, 7, 0, 1), (6, 7, 0, 1, 2, 3))
    assert not grid_subgoal_transitions(pools[1]) & seen
    # seen, 6 subgoals: every walk of the out-degree-2 seen-transition graph, 4 · 2^5 of them
    assert len(pools[2]) == 128 and len(set(pools[2])) == 128
    assert all(len(task) == 12 for task in pools[2]) and grid_subgoal_transitions(pools[2]) == seen
    for pool in pools:
        resolve_tasks(None, pool, 8, GRID_POSTTRAIN_TASK)  # every task is valid for the env
    with pytest.raises(ValueError, match="n_subgoals"):
        grid_subgoal_walk_tasks(0, seen)
    with pytest.raises(ValueError, match="no task"):
        grid_subgoal_walk_tasks(2, frozenset())


def test_resolve_tasks_default_pool_is_replaced_by_either_keyword():
    """The registered ids pass their choice as ``default_tasks``, which task=/tasks= replace (SPEC B2)."""
    assert resolve_tasks(None, None, 4, ANT_POSTTRAIN_TASK, ANT_PRETRAIN_TASKS) == ANT_PRETRAIN_TASKS
    assert resolve_tasks([2, 0], None, 4, ANT_POSTTRAIN_TASK, ANT_PRETRAIN_TASKS) == ((2, 0),)
    assert resolve_tasks(None, [[1, 2]], 4, ANT_POSTTRAIN_TASK, ANT_PRETRAIN_TASKS) == ((1, 2),)
    # a replaced default is not validated (the grid pretraining tasks need 8 colours, not 2)
    assert resolve_tasks([1, 0], None, 2, GRID_POSTTRAIN_TASK, GRID_PRETRAIN_TASKS) == ((1, 0),)
    with pytest.raises(ValueError, match="colour 4"):
        resolve_tasks(None, None, 4, ANT_POSTTRAIN_TASK, [[0, 4]])  # a used default is
    with pytest.raises(ValueError, match="not both"):
        resolve_tasks([0], [[1]], 4, ANT_POSTTRAIN_TASK, ANT_PRETRAIN_TASKS)
