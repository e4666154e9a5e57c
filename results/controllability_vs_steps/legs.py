"""Per-leg success of the steered base model, from the colour-count histograms of
``controller_data_dev.py`` outputs (session 20).

A task of 2K colours is K pairs; an episode that has visited ``c`` colours either took the next
leg or ended. "to pair start" legs (c even: 0, 2, …) need the controller to pick the next pair;
"to partner" legs (c odd) go to the other colour of the pair just entered, which the history
alone already names (every pair is always walked first colour → second). The product of all legs
is the success rate.

usage: python legs.py OUT.json IN.json [IN.json ...]
"""
import json
import sys
from pathlib import Path


def leg_rates(hist: list[int]) -> tuple[list[float], list[float]]:
    """(to-pair-start rates, to-partner rates): P(visit colour c+1 | visited c) by parity of c."""
    at_least = [sum(hist[c:]) for c in range(len(hist))]
    rate = [at_least[c + 1] / at_least[c] if at_least[c] else float("nan") for c in range(len(hist) - 1)]
    return rate[0::2], rate[1::2]


out, inputs = Path(sys.argv[1]), sys.argv[2:]
table = {}
for path in inputs:
    result = json.loads(Path(path).read_text())
    rows = {}
    for pool, cell in result["pools"].items():
        start, partner = leg_rates(cell["colors_visited_counts"])
        rows[pool] = {"success_rate": cell["success_rate"], "episodes": cell["episodes"],
                      "to_pair_start": [round(x, 3) for x in start], "to_partner": [round(x, 3) for x in partner]}
    table[path] = {"model": result.get("model"), "source": result["source"], "layer": result["layer"], "pools": rows}
out.write_text(json.dumps(table, indent=1))
for path, entry in table.items():
    print(entry["model"])
    for pool, row in entry["pools"].items():
        print(f"  {pool}: success {row['success_rate']:.3f}\n    to pair start {row['to_pair_start']}\n    to partner    {row['to_partner']}")
