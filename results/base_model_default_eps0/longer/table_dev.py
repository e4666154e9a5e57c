"""Tables of `NOTE.md` here, read from the JSON files only (development script, session 32).

Step 6,000 is the ε = 0 study one folder up (seed 0: its `results.json`; seeds 1, 2: its
`controllers_layer*_seed*.json`). Steps 12,000 / 18,000 / 24,000 are this folder's
`controllers_step*_layer*_seed*.json`, written by `../controller_seeds_dev.py` on the continued
backbones.

Usage: python results/base_model_default_eps0/longer/table_dev.py
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from agents.base_model_study import subgoal_completion_rates

HERE = Path(__file__).parent
STUDY = HERE.parent
POOLS = ("seen transitions, 3 subgoals (pretraining tasks)", "unseen transitions, 3 subgoals",
         "seen transitions, 6 subgoals", "unseen transitions, 6 subgoals (post-training task)")
SHORT = ("pretraining tasks", "unseen-transition walks", "seen 6-subgoal walks", "`HierGrid-v0`")


def runs() -> dict[tuple[int, int], dict[int, dict]]:
    """(backbone step, layer) -> seed -> pools (each {success_rate, colors_visited_counts, ...})."""
    table: dict[tuple[int, int], dict[int, dict]] = {}
    study = json.loads((STUDY / "results.json").read_text())
    table[(6000, 3)] = {0: study["composition"]}
    for path in STUDY.glob("controllers_layer*_seed*.json"):
        layer, seed = map(int, re.fullmatch(r"controllers_layer(\d)_seed(\d)\.json", path.name).groups())
        table.setdefault((6000, layer), {})[seed] = json.loads(path.read_text())["pools"]
    for path in HERE.glob("controllers_step*_layer*_seed*.json"):
        step, layer, seed = map(int, re.fullmatch(r"controllers_step(\d+)_layer(\d)_seed(\d)\.json", path.name).groups())
        table.setdefault((step, layer), {})[seed] = json.loads(path.read_text())["pools"]
    return table


def span(values: list[float | None], digits: int = 3) -> str:
    """"low–high" over the values; "–" where none is defined (a subgoal no episode started)."""
    values = [v for v in values if v is not None]
    if not values:
        return "–"
    low, high = f"{min(values):.{digits}f}", f"{max(values):.{digits}f}"
    return low if low == high else f"{low}–{high}"


def main() -> None:
    table = runs()
    print("| backbone steps | layer | seeds | " + " | ".join(SHORT)
          + " | `HierGrid-v0` P(subgoal k done \\| started), k = 1 … 6 |")
    print("|---|---|---|" + "---|" * (len(SHORT) + 1))
    for (step, layer), rows in sorted(table.items(), key=lambda item: (item[0][1] != 3, item[0])):
        seeds = sorted(rows)
        cells = [span([rows[s][pool]["success_rate"] for s in seeds]) for pool in POOLS]
        per_seed = [subgoal_completion_rates(rows[s][POOLS[3]]["colors_visited_counts"]) for s in seeds]
        legs = " · ".join(span([c[k] for c in per_seed], 2) for k in range(6))
        print(f"| {step:,} | {layer} | {', '.join(map(str, seeds))} | " + " | ".join(cells) + f" | {legs} |")
    print("\nPer seed, `HierGrid-v0` (at 6,000 steps seed 0 of every layer from the study's layer table):")
    v0 = {key: {s: rows[s][POOLS[3]]["success_rate"] for s in rows} for key, rows in table.items()}
    study = json.loads((STUDY / "results.json").read_text())
    for layer, row in study["controllers"].items():
        v0.setdefault((6000, int(layer)), {})[0] = row["success_rate"]
    for (step, layer), rates in sorted(v0.items()):
        print(f"  step {step:>6,} layer {layer}: " + ", ".join(f"seed {s} {rates[s]:.3f}" for s in sorted(rates)))


if __name__ == "__main__":
    main()
