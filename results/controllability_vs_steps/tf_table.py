"""Markdown tables from ``teacher_forced_legs_dev.py`` outputs (session 21).

usage: python tf_table.py IN.json [IN.json ...]
"""
import json
import sys
from pathlib import Path

LEG_NAMES = ["→A", "A→B", "B→C", "C→D", "D→A", "A→B"]  # legs into a new pair: c = 0, 2, …, 10


def fmt(values: list, every_other: bool = True) -> str:
    picked = values[0::2] if every_other else values
    return " · ".join("–" if v is None else f"{v:.2f}" for v in picked)


print("| model | controllers | kind | survival product | survival, legs into a new pair (" + " · ".join(LEG_NAMES)
      + ") | survival, legs to the partner | p_optimal, legs into a new pair | p_prior, legs into a new pair after the first |")
print("|---|---|---|---|---|---|---|---|")
for path in sys.argv[1:]:
    r = json.loads(Path(path).read_text())
    for kind in ("controlled", "unsteered"):
        k = r[kind]
        print(f"| {Path(r['model']).name} | {Path(r['controllers']).stem} | {kind} | {k['survival_product']:.3f} | "
              f"{fmt(k['survival'])} | {fmt(k['survival'][1:])} | {fmt(k['p_optimal'])} | {fmt(k['p_prior'][2:])} |")
