"""Dev: copy a metacontroller run's latest.pt into a new run dir with a larger train_steps (constant lr, no
schedule: continuing it is the same trajectory as a longer run from the start)."""
import sys
from pathlib import Path
from agents.checkpoints import load_checkpoint, save_checkpoint
src, dst, steps = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
record = load_checkpoint(src / "latest.pt", expected_kind="metacontroller")
record["config"]["train_steps"] = steps
dst.mkdir(parents=True, exist_ok=True)
save_checkpoint(dst / "latest.pt", record)
(dst / "metrics.csv").write_text((src / "metrics.csv").read_text())
print("step", record["step"], "->", steps)
