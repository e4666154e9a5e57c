"""Markdown table from ``handover_dev.py`` outputs (session 21).

usage: python handover_table.py IN.json [IN.json ...]
"""
import json
import sys
from pathlib import Path

print("| model | controllers | next colour after the expert's first 0 · 2 · 4 · 6 · 8 · 10 colours (→A · A→B · B→C · C→D · D→A · A→B) "
      "| task completed from there | episodes per row |")
print("|---|---|---|---|---|")
for path in sys.argv[1:]:
    r = json.loads(Path(path).read_text())
    rows = r["rows"]
    print(f"| {Path(r['model']).name} | {Path(r['controllers']).stem} | "
          + " · ".join(f"{row['next_leg']:.2f}" for row in rows) + " | "
          + " · ".join(f"{row['success']:.2f}" for row in rows) + f" | {min(row['episodes'] for row in rows)}–{max(row['episodes'] for row in rows)} |")
