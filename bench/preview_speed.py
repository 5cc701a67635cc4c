"""Speed of the README's preview (``unpaired run recipes/forest_abstract.yaml --quick``) for
loader workers x torch intra-op threads (x precision), side by side in one run.

Each configuration trains the preview recipe (its ``quick`` overrides, the bundled data) in its
own fresh Python process, so worker processes, OpenMP thread pools and allocator state never
carry over. Timing: an ``on_step`` plugin stamps every step; after ``--warmup`` steps, ``--steps``
more are timed, loader waits, logging and everything else of the loop included (the preview's
sample grids and checkpoints come every 250 steps, outside the timed window). The
configurations take turns, round after round (the order rotates), so a machine that gets busier
slows them alike; the table gives the median it/s over rounds, the share of the cores other
processes used meanwhile, and each configuration's speed against the first.

Rows: the product of ``--workers`` x ``--threads`` x ``--precisions``, then ``before`` (the
defaults before data.num_workers=auto: 2 workers, torch's default threads, fp32) and
``default`` (the recipe's defaults now: workers auto, default threads, precision auto).

    python bench/preview_speed.py                                 # 0,1,2 workers x 1,2 threads
    python bench/preview_speed.py --precisions fp32,bf16 --rounds 3 --out bench_results/preview
    python bench/preview_speed.py --steps 3 --warmup 1 --rounds 1 --workers 0 --threads 1  # smoke test
"""
import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RECIPE = ROOT / "recipes" / "forest_abstract.yaml"
sys.path.insert(0, str(HERE))

from unpaired import hookimpl  # noqa: E402


# -- the child: one configuration, one process -----------------------------------------------
class StepClock:
    """A runtime plugin: perf_counter at the end of every step."""

    def __init__(self):
        self.stamps = []

    @hookimpl
    def on_step(self, run, step):
        self.stamps.append(time.perf_counter())


def child(args):
    import torch

    if args.threads != "default":
        torch.set_num_threads(int(args.threads))
    from unpaired.recipe.config import load_recipe
    from unpaired.loading import register_plugin, unregister_plugin
    from unpaired.engine.trainer import Trainer

    clock = StepClock()
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as out:
        cfg = load_recipe(RECIPE, [
            f"data.num_workers={args.workers}", f"train.precision={args.precision}",
            f"train.max_steps={args.warmup + args.steps}", "disable_plugins=[progress]",
            f"out_dir={out}", *args.overrides], quick=True)
        trainer = Trainer(cfg)
        register_plugin(clock, name="bench-preview-clock")
        try:
            trainer.run()
        finally:
            unregister_plugin("bench-preview-clock")
    wall = time.perf_counter() - t0
    s = clock.stamps
    timed = s[args.warmup + args.steps - 1] - s[args.warmup - 1] if args.warmup else s[-1] - s[0]
    n = args.steps if args.warmup else args.steps - 1
    print(json.dumps({
        "it_per_s": n / timed, "s_per_it": timed / n, "wall_s": wall,
        "workers": trainer.num_workers, "threads": torch.get_num_threads(),
        "precision": {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[trainer.amp_dtype],
        "device": str(trainer.device),
    }))


# -- the parent: rounds of subprocesses, one table -------------------------------------------
def configs(args):
    rows = [{"workers": w, "threads": t, "precision": p}
            for p in args.precisions.split(",") for w in args.workers.split(",") for t in args.threads.split(",")]
    if not args.no_defaults:
        rows.append({"label": "before (2 workers, fp32)", "workers": "2", "threads": "default", "precision": "fp32"})
        rows.append({"label": "default (auto, auto)", "workers": "auto", "threads": "default", "precision": "auto"})
    for r in rows:
        r.setdefault("label", f"{r['workers']} workers, {r['threads']} threads, {r['precision']}")
    return rows


def run_child(args, cfg):
    from train_step import busy_seconds

    cmd = [sys.executable, str(Path(__file__).resolve()), "--_child", "--workers", cfg["workers"],
           "--threads", cfg["threads"], "--precision", cfg["precision"], "--steps", str(args.steps),
           "--warmup", str(args.warmup), *args.overrides]
    b0, t0, c0 = busy_seconds(), time.perf_counter(), children_cpu()
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    dt, own = time.perf_counter() - t0, children_cpu() - c0
    try:
        res = json.loads(r.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        raise SystemExit(f"configuration {cfg['label']} failed (exit {r.returncode}):\n{r.stderr[-3000:]}")
    if b0 is not None:  # the share of the cores that other processes used meanwhile
        res["others_share"] = max(0.0, busy_seconds() - b0 - own) / (dt * os.cpu_count())
    return res


def children_cpu():
    """CPU seconds of the finished child processes (and their loader workers)."""
    u = resource.getrusage(resource.RUSAGE_CHILDREN)
    return u.ru_utime + u.ru_stime


def table(rows, results):
    base = statistics.median(x["it_per_s"] for x in results[rows[0]["label"]])
    lines = ["| configuration | resolved (workers, threads, precision) | median it/s | min-max it/s | "
             f"vs first | wall s per run | others' share of the cores |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        res = results[r["label"]]
        its = [x["it_per_s"] for x in res]
        med = statistics.median(its)
        first = res[0]
        busy = [x["others_share"] for x in res if "others_share" in x]
        lines.append(
            f"| {r['label']} | {first['workers']}, {first['threads']}, {first['precision']} | {med:.2f} | "
            f"{min(its):.2f}-{max(its):.2f} | {med / base:.2f}x | {statistics.median(x['wall_s'] for x in res):.0f} | "
            + (f"{100 * statistics.median(busy):.0f}%" if busy else "-") + " |")
    return "\n".join(lines)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    p.add_argument("--workers", default="0,1,2", help="data.num_workers values, comma-separated (auto allowed)")
    p.add_argument("--threads", default="1,2", help="torch intra-op threads, comma-separated (default: torch's)")
    p.add_argument("--precisions", default="auto", help="train.precision values, comma-separated")
    p.add_argument("--steps", type=int, default=60, help="timed steps per run")
    p.add_argument("--warmup", type=int, default=10, help="untimed steps first")
    p.add_argument("--rounds", type=int, default=2, help="runs of every configuration (alternating)")
    p.add_argument("--no-defaults", action="store_true", help="leave out the 'before' and 'default' rows")
    p.add_argument("--out", default=None, help="directory for preview_speed.json and .md")
    p.add_argument("overrides", nargs="*", help="recipe overrides for every run (key=value)")
    p.add_argument("--_child", dest="child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--precision", default="auto", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        return child(args)
    if args.steps < 2:
        raise SystemExit("--steps must be at least 2")

    from train_step import machine

    info = machine("cpu")
    info["command"] = " ".join(["python", "bench/preview_speed.py", *sys.argv[1:]])
    rows = configs(args)
    print(f"{info['cpu']}, {info['cores']} cores, torch {info['torch']} (default {info['torch_threads']} threads, "
          f"{info['cpu_capability']}), load average {' '.join(info.get('loadavg_start', []))}")
    print(f"preview recipe (--quick), {args.warmup} warm-up + {args.steps} timed steps per run, "
          f"{args.rounds} round(s) of {len(rows)} configurations, each run in its own process", flush=True)
    results = {r["label"]: [] for r in rows}
    t0 = time.perf_counter()
    for k in range(args.rounds):
        order = rows[k % len(rows):] + rows[:k % len(rows)]
        for r in order:
            res = run_child(args, r)
            results[r["label"]].append(res)
            print(f"  round {k + 1}: {r['label']}: {res['it_per_s']:.2f} it/s ({res['wall_s']:.0f} s)", flush=True)
    info["loadavg_end"] = Path("/proc/loadavg").read_text().split()[:3] if Path("/proc/loadavg").exists() else []
    md = table(rows, results)
    print(md)
    print(f"total {time.perf_counter() - t0:.0f} s; load average at the end: {' '.join(info['loadavg_end'])}")
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "preview_speed.json").write_text(json.dumps(
            {"machine": info, "args": vars(args), "configs": rows, "results": results}, indent=1))
        (out / "preview_speed.md").write_text(md + "\n")


if __name__ == "__main__":
    main()
