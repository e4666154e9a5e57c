"""Tables of `NOTE.md` here, read from the JSON files only (development script, session 31).

Seed 0 of each backbone is its study's own controllers (`results.json`: the layer table and, at
layer 3, the composition stage); seeds 1 and 2 are refits. ε = 0: `controller_seeds_dev.py`
(package code). ε = 0.1 (the session-28 replicate): `../hypernet_controllers/hypernet_dev.py`
(its twin of the package's hypernetwork form), as tabulated in that folder's NOTE.

Usage: python results/base_model_default_eps0/table_dev.py
"""

from __future__ import annotations

import json
from pathlib import Path

from agents.base_model_study import subgoal_completion_rates

HERE = Path(__file__).parent
RESULTS = HERE.parent
POOLS = ("seen transitions, 3 subgoals (pretraining tasks)", "unseen transitions, 3 subgoals",
         "seen transitions, 6 subgoals", "unseen transitions, 6 subgoals (post-training task)")
SHORT = ("pretraining tasks", "unseen-transition walks", "seen 6-subgoal walks", "`HierGrid-v0`")


def seed_files(backbone: str, layer: int) -> dict[int, Path]:
    if backbone == "eps0":
        return {s: HERE / f"controllers_layer{layer}_seed{s}.json" for s in (1, 2)}
    return {s: RESULTS / "hypernet_controllers" / f"hypernet_init1.0_layer{layer}_seed{s}.json" for s in (1, 2)}


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


def span(values: list[float], digits: int = 3) -> str:
    low, high = f"{min(values):.{digits}f}", f"{max(values):.{digits}f}"
    return low if low == high else f"{low}–{high}"


def main() -> None:
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


if __name__ == "__main__":
    main()
