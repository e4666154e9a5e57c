"""Print the leg tables of NOTE.md from the leg_choice_dev.py JSONs (session 30)."""
import json
import sys
from pathlib import Path

here = Path(__file__).parent
runs = [("unsteered", "legs_unsteered.json"), ("lookup, layer 3", "legs_lookup_layer3.json"),
        ("paper form, layer 3", "legs_hypernet_layer3.json"), ("paper form, layer 0", "legs_hypernet_layer0.json")]
pool = sys.argv[1] if len(sys.argv) > 1 else "unseen transitions, 3 subgoals"
print(f"pool: {pool}\n")
print("cell: right / legs started; wrong entries into the two prior pairs; the unopposed pair's share of those\n")
print("| controllers | " + " | ".join(["A→B", "B→C", "C→D", "D→A"]) + " |")
print("|---|---|---|---|---|")
for label, name in runs:
    legs = json.loads((here / name).read_text())["pools"][pool]["legs"]
    cells = []
    for key in ("A->B", "B->C", "C->D", "D->A"):
        row = legs.get(key)
        if row is None:
            cells.append("–")
            continue
        c, n = row["counts"], row["legs"]
        prior = row["prior_after_previous"]
        target = key[-1]
        others = " / ".join(f"{p} {c.get(p, 0)}" for p in prior)
        free = row["unopposed"][0]
        wrong = sum(c.get(p, 0) for p in prior)
        share = f"{c.get(free, 0) / wrong:.2f} of {wrong}" if wrong else "–"
        cells.append(f"{c.get(target, 0)}/{n}; {others}; {free}: {share}")
    print(f"| {label} | " + " | ".join(cells) + " |")
