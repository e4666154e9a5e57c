"""Tables of `NOTE.md` here and of `longer/NOTE.md`, read from the JSON files only
(development script, sessions 31–32).

Seed 0 of each backbone is its study's own controllers (`results.json`: the layer table and, at
layer 3, the composition stage); seeds 1 and 2 are refits. ε = 0: `controller_seeds_dev.py`
(package code). ε = 0.1 (the session-28 replicate): `../hypernet_controllers/hypernet_dev.py`
(its twin of the package's hypernetwork form), as tabulated in that folder's NOTE. `longer`: the
ε = 0 backbone continued to 12,000 / 18,000 / 24,000 steps, `longer/controllers_step*.json`
(also `controller_seeds_dev.py`) next to the 6,000-step files here.

Usage: python results/base_model_default_eps0/table_dev.py [longer]
"""

from __future__ import annotations

import functools
import json
import re
import sys
from pathlib import Path

from agents.base_model_study import subgoal_completion_rates
from hier_envs.tasks import grid_composition_task_sets

HERE = Path(__file__).parent
RESULTS = HERE.parent
POOLS = tuple(grid_composition_task_sets())  # the study's pool names; the last is HierGrid-v0
SHORT = ("pretraining tasks", "unseen-transition walks", "seen 6-subgoal walks", "`HierGrid-v0`")


def seed_files(backbone: str, layer: int) -> dict[int, Path]:
    if backbone == "eps0":
        return {s: HERE / f"controllers_layer{layer}_seed{s}.json" for s in (1, 2)}
    return {s: RESULTS / "hypernet_controllers" / f"hypernet_init1.0_layer{layer}_seed{s}.json" for s in (1, 2)}


@functools.cache  # read each results.json once; callers only read it
def study(backbone: str) -> dict:
    folder = "base_model_default_eps0" if backbone == "eps0" else "base_model_default_hypernet"
    return json.loads((RESULTS / folder / "results.json").read_text())


def pool_rows(backbone: str, layer: int) -> dict[int, dict]:
    """seed -> {pool: {success_rate, colors_visited_counts}} where all pools were scored."""
    rows = {}
    if layer == 3:
        rows[0] = study(backbone)["composition"]
    for seed, path in seed_files(backbone, layer).items():
        if path.exists():
            rows[seed] = json.loads(path.read_text())["pools"]
    return rows


def v0_success(backbone: str, layer: int) -> dict[int, float]:
    out = {0: study(backbone)["controllers"][str(layer)]["success_rate"]}
    for seed, path in seed_files(backbone, layer).items():
        if path.exists():
            out[seed] = json.loads(path.read_text())["pools"][POOLS[3]]["success_rate"]
    return out


def span(values: list[float | None], digits: int = 3) -> str:
    """"low–high" over the values; "–" where none is defined (a subgoal no episode started)."""
    values = [v for v in values if v is not None]
    if not values:
        return "–"
    low, high = f"{min(values):.{digits}f}", f"{max(values):.{digits}f}"
    return low if low == high else f"{low}–{high}"


def epsilon_tables() -> None:
    print("## HierGrid-v0 by layer (seeds in brackets)\n")
    print("| layer | ε = 0.1 (session-28 replicate) | ε = 0 |")
    print("|---|---|---|")
    for layer in range(7):
        cells = []
        for backbone in ("eps0.1", "eps0"):
            values = v0_success(backbone, layer)
            cells.append(f"{span(list(values.values()))} ({len(values)})")
        print(f"| {layer} | " + " | ".join(cells) + " |")
    for layer in (0, 2, 3):
        print(f"\n## Layer {layer}: composition pools\n")
        print("| D | seeds | " + " | ".join(SHORT) + " | `HierGrid-v0` P(subgoal k done \\| started), k = 1 … 6 |")
        print("|---|---|" + "---|" * (len(SHORT) + 1))
        for backbone in ("eps0.1", "eps0"):
            rows = pool_rows(backbone, layer)
            if not rows:
                continue
            cells = [span([rows[s][pool]["success_rate"] for s in rows]) for pool in POOLS]
            per_seed = [subgoal_completion_rates(rows[s][POOLS[3]]["colors_visited_counts"]) for s in rows]
            legs = " · ".join(span([c[k] for c in per_seed], 2) for k in range(6))
            label = "ε = 0.1" if backbone == "eps0.1" else "ε = 0"
            print(f"| {label} | {','.join(map(str, sorted(rows)))} | " + " | ".join(cells) + f" | {legs} |")


def longer_runs() -> tuple[dict[tuple[str, int], dict[int, dict]], dict[tuple[str, int], dict[int, float]]]:
    """ε = 0 backbone: (steps label, layer) -> seed -> pools where all pools were scored, and the same
    keys -> seed -> `HierGrid-v0` success, which at 6,000 steps adds the study's seed 0 of every layer.
    A label is the step count, "36,000 (fresh D)" for the run continued on a fresh D (session 35)."""
    pools: dict[tuple[str, int], dict[int, dict]] = {("6,000", 3): {0: study("eps0")["composition"]}}
    for path in HERE.glob("controllers_layer*_seed*.json"):
        layer, seed = map(int, re.fullmatch(r"controllers_layer(\d)_seed(\d)\.json", path.name).groups())
        pools.setdefault(("6,000", layer), {})[seed] = json.loads(path.read_text())["pools"]
    for path in (HERE / "longer").glob("controllers_step*_layer*_seed*.json"):
        step, fresh, layer, seed = re.fullmatch(r"controllers_step(\d+)(_freshD)?_layer(\d)_seed(\d)\.json", path.name).groups()
        key = (f"{int(step):,}" + (" (fresh D)" if fresh else ""), int(layer))
        pools.setdefault(key, {})[int(seed)] = json.loads(path.read_text())["pools"]
    v0 = {key: {s: rows[s][POOLS[3]]["success_rate"] for s in rows} for key, rows in pools.items()}
    for layer, row in study("eps0")["controllers"].items():
        v0.setdefault(("6,000", int(layer)), {})[0] = row["success_rate"]
    return pools, v0


def steps_order(label: str) -> tuple[int, str]:
    """Sort key of a steps label: by step count, the fresh-D run after its same-D twin."""
    return int(label.split()[0].replace(",", "")), label


def longer_tables() -> None:
    pools, v0 = longer_runs()
    print("| backbone steps | layer | seeds | " + " | ".join(SHORT)
          + " | `HierGrid-v0` P(subgoal k done \\| started), k = 1 … 6 |")
    print("|---|---|---|" + "---|" * (len(SHORT) + 1))
    for (step, layer), rows in sorted(pools.items(), key=lambda item: (item[0][1] != 3, steps_order(item[0][0]), item[0][1])):
        seeds = sorted(rows)
        cells = [span([rows[s][pool]["success_rate"] for s in seeds]) for pool in POOLS]
        per_seed = [subgoal_completion_rates(rows[s][POOLS[3]]["colors_visited_counts"]) for s in seeds]
        legs = " · ".join(span([c[k] for c in per_seed], 2) for k in range(6))
        print(f"| {step} | {layer} | {', '.join(map(str, seeds))} | " + " | ".join(cells) + f" | {legs} |")
    print("\nPer seed, `HierGrid-v0` (at 6,000 steps seed 0 of every layer from the study's layer table):")
    for (step, layer), rates in sorted(v0.items(), key=lambda item: (steps_order(item[0][0]), item[0][1])):
        print(f"  step {step:>6} layer {layer}: " + ", ".join(f"seed {s} {rates[s]:.3f}" for s in sorted(rates)))


if __name__ == "__main__":
    if sys.argv[1:] not in ([], ["longer"]):
        raise SystemExit(f"usage: table_dev.py [longer], got {sys.argv[1:]}")
    if sys.argv[1:]:
        longer_tables()
    else:
        epsilon_tables()
