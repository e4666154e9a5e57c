"""Diagnostic (not product code): do the ground-truth controllers fail on `HierGrid-v0` because
the backbone meets contexts longer than any pretraining episode?

Trains layer-L ground-truth controllers with the study's `default` controller settings (800 steps,
batch 128, AdamW 1e-3, weight decay 0.03, seed 0) on the frozen 6,000-step backbone, using the
lower half's residuals of D* computed once (exact: the lower half is frozen), then evaluates them
on `HierGrid-v0` and on the composition pools with an inference-time attention window: keys
``window`` or more steps behind the query are masked (a monkeypatch of the relative-position
bias masks; ``none`` = the full causal context, as trained).

usage: python window_dev.py LAYER WINDOWS OUT.jsonl   (WINDOWS e.g. none,16,24,32,48)
environment: THREADS (1), EPISODES (1000), and the controller variant RANK (16; 0 = a full W × W matrix), WD (0.03), STEPS (800)
RUN_DIR (session 14): evaluate that study run dir's own backbone and layer-LAYER controllers instead
(no fit; `results/base_model_default_wd0.4`); POOLS ("post,seen6" keeps `HierGrid-v0` and the
seen-transition 6-subgoal pool); SINK=1 (session 15) keeps the episode's first step visible to every
query inside the window (an "attention sink", Xiao et al. 2023), so that a window does not also
remove the one key every pretraining query could see; CONTROLLERS (session 16, with RUN_DIR) evaluates
that saved controller file instead of the run dir's own (e.g. `../failure_anatomy/controller_data_dev.py`'s
controllers fitted on other expert data); GREEDY=1 (session 16) acts with the argmax action instead of
sampling
"""
import json, os, sys, time
from pathlib import Path
import numpy as np, torch
from agents.pretrain import load_base_model, batch_tensors
from agents.controllers import SubgoalControllers, evaluate_subgoal_controllers, load_subgoal_controllers
from agents.lower_residuals import LowerResiduals
from agents.models.controller import freeze
from agents.models import transformer as tr
from hier_envs.datasets import load_dataset
from hier_envs.tasks import grid_composition_task_sets

torch.set_num_threads(int(os.environ.get("THREADS", "1")))
layer, windows, out = int(sys.argv[1]), sys.argv[2].split(","), Path(sys.argv[3])
n_episodes = int(os.environ.get("EPISODES", "1000"))
RANK, WD, STEPS = int(os.environ.get("RANK", "16")), float(os.environ.get("WD", "0.03")), int(os.environ.get("STEPS", "800"))
WINDOW = [None]
SINK = os.environ.get("SINK") == "1"
GREEDY = os.environ.get("GREEDY") == "1"
_causal, _step = tr.RelativePositionBias.causal_mask, tr.RelativePositionBias.step_mask


def causal_mask(self, length):
    mask = _causal(self, length)
    if WINDOW[0] is None:
        return mask
    pos = torch.arange(length)
    far = (pos[:, None] - pos[None, :]) >= WINDOW[0]
    if SINK:
        far[:, 0] = False
    return mask.masked_fill(far, float("-inf"))


def step_mask(self, lengths, n_keys):
    mask = _step(self, lengths, n_keys)  # (B, H, 1, S)
    if WINDOW[0] is None:
        return mask
    far = (lengths[:, None] - torch.arange(n_keys)[None, :]) >= WINDOW[0]  # (B, S)
    if SINK:
        far[:, 0] = False
    return mask.masked_fill(far[:, None, None, :], float("-inf"))


tr.RelativePositionBias.causal_mask, tr.RelativePositionBias.step_mask = causal_mask, step_mask
RUN_DIR = os.environ.get("RUN_DIR")
model = freeze(load_base_model(Path(RUN_DIR or "runs/grid_default") / "base_model" / "model.pt")); model.eval()
dstar = load_dataset("runs/grid_default/data_Dstar.npz") if RUN_DIR is None else None
tag = "" if (RANK, WD, STEPS) == (16, 0.03, 800) else f"_rank{RANK}_wd{WD}_steps{STEPS}"
ctrl_path = out.with_name(f"controllers_layer{layer}{tag}.pt")
CONTROLLERS = os.environ.get("CONTROLLERS")
if CONTROLLERS is not None and RUN_DIR is None:
    raise ValueError("CONTROLLERS needs RUN_DIR (the backbone they were fitted on)")
if RUN_DIR is not None:
    ctrl = load_subgoal_controllers(Path(CONTROLLERS or Path(RUN_DIR) / "controllers" / f"layer_{layer}.pt"),
                                    model.config.width, expect_layer=layer, expect_base_model=model)
else:
    torch.manual_seed(0)
    ctrl = SubgoalControllers(model.config.width, 4, RANK or None)
    if ctrl_path.exists():
        ctrl.load_state_dict(torch.load(ctrl_path))
    else:
        t0 = time.time()
        lower = LowerResiduals(model, dstar, layer)  # the frozen lower half's D* residuals, computed once
        opt = torch.optim.AdamW(ctrl.parameters(), lr=1e-3, weight_decay=WD)
        rng = np.random.default_rng([0, 23])
        for step in range(STEPS):
            idx = rng.integers(dstar.n_episodes, size=128)
            b = batch_tensors(dstar, idx)
            loss = model.loss(model.forward_upper(ctrl(lower(idx, b), b["subgoals"].clamp(min=0)), layer), b, 0.0)["action_nll"]
            opt.zero_grad(set_to_none=True); loss.backward(); opt.step()
        torch.save(ctrl.state_dict(), ctrl_path)
        print(json.dumps({"layer": layer, "rank": RANK, "weight_decay": WD, "steps": STEPS, "train_s": round(time.time() - t0, 1), "final_loss": float(loss.detach())}), flush=True)
pools = {"HierGrid-v0": ("HierGrid-v0", None)}
pools.update({name: ("HierGrid-Pretrain-v0", {"tasks": tasks}) for name, tasks in grid_composition_task_sets().items()
              if "post-training" not in name})
if os.environ.get("POOLS") == "post,seen6":
    pools = {k: v for k, v in pools.items() if k in ("HierGrid-v0", "seen transitions, 6 subgoals")}
for w in windows:
    WINDOW[0] = None if w == "none" else int(w)
    for name, (env_id, kwargs) in pools.items():
        tic = time.time()
        st = evaluate_subgoal_controllers(model, ctrl, layer, env_id=env_id, n_episodes=n_episodes, env_kwargs=kwargs,
                                          greedy=GREEDY)
        row = {**({"run_dir": RUN_DIR} if RUN_DIR else {}), **({"controllers": CONTROLLERS} if CONTROLLERS else {}), "layer": layer, "rank": RANK, "weight_decay": WD, "steps": STEPS, "window": WINDOW[0], **({"sink": True} if SINK else {}), **({"greedy": True} if GREEDY else {}), "pool": name, "episodes": n_episodes, "success": st.success_rate,
               "colors_hist": np.bincount(st.colors_visited, minlength=13).tolist(), "eval_s": round(time.time() - tic, 1)}
        with out.open("a") as f:
            f.write(json.dumps(row) + "\n")
        print(json.dumps(row), flush=True)
