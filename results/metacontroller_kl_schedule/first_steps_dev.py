"""Dev: collect the training-batch switches per episode of the first 300 steps of each
from-scratch run of the recipe (the α = 0.01 phase, where β either stays open or closes for good)
from the runs' metrics.csv into one CSV.

usage: python first_steps_dev.py OUT.csv LABEL=RUN_DIR..."""
import csv, sys
from pathlib import Path

rows = []
for arg in sys.argv[2:]:
    label, run_dir = arg.split("=", 1)
    with open(Path(run_dir) / "metrics.csv") as f:
        for r in csv.DictReader(f):
            if int(r["step"]) <= 300:
                rows.append({"run": label, "step": int(r["step"]), "action_nll": float(r["action_nll"]),
                             "switches_per_episode": float(r["switches_per_episode"])})
tmp = Path(sys.argv[1]).with_suffix(".tmp")
with open(tmp, "w", newline="") as f:
    writer = csv.DictWriter(f, fieldnames=list(rows[0]))
    writer.writeheader(); writer.writerows(rows)
tmp.replace(sys.argv[1])
