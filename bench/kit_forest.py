"""The training kit on the forest -> abstract preview: the recipe's ``--quick`` run (1,000 steps on
the 48 + 48 shipped images, diffaugment, 4 kept steps) with ``train.ema`` once per variant and
seed, interleaved; every kept step is scored with ``unpaired eval --extractor tiny`` twice: the
averaged generator (the default) and the trained weights (``--raw``). KID of each direction
against the real target test images (offline, comparable within this table only).

    base   the preview with train.ema (its --raw rows: the preview as it was)
    r1     + losses.adversarial.params.r1_gamma (``--r1-gamma``)

    python bench/kit_forest.py --seeds 0,1
"""
import argparse
import statistics
import tempfile
from pathlib import Path

from checkerboard import evaluate, precision_auto, train  # bench/ is on sys.path when run as a script
from quality import load_average, machine


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variants", default="base,r1")
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--ema", type=float, default=0.999)
    parser.add_argument("--r1-gamma", type=float, default=1.0)
    parser.add_argument("--keep", default=None, help="keep the runs in this folder (default: a temporary one)")
    args = parser.parse_args()
    variants = [v for v in args.variants.split(",") if v]
    base = Path(args.keep or tempfile.mkdtemp(prefix="kit_forest_"))
    kept = [args.steps // 4 * k for k in (1, 2, 3, 4)]
    results = {}
    loads = []
    for seed in [int(s) for s in args.seeds.split(",")]:
        for variant in variants:
            run = base / f"{variant}_seed{seed}"
            extra = [f"train.ema={args.ema}", f"train.keep_every={args.steps // 4}"]
            if variant == "r1":
                extra.append(f"losses.adversarial.params.r1_gamma={args.r1_gamma}")
            seconds = train(run, seed, args.steps, *extra)
            loads.append(load_average())
            for raw in (True, False):
                for step in kept:
                    results[(variant, raw, seed, step)] = evaluate(run, step, raw=raw)
            last = {raw: results[(variant, raw, seed, kept[-1])] for raw in (True, False)}
            results[(variant, "seconds", seed, 0)] = seconds
            print(f"{variant} seed {seed}: {seconds:.0f} s; KID a2b raw {last[True]['kid_a2b']:.4f} "
                  f"ema {last[False]['kid_a2b']:.4f}", flush=True)
    seeds = [int(s) for s in args.seeds.split(",")]
    print(f"\n{args.steps} steps, seeds {args.seeds}; train.ema {args.ema}, r1_gamma {args.r1_gamma}; {machine()}; "
          f"precision auto ({precision_auto()}); load average after each run: {', '.join(loads)}\n")
    head = ["variant", "weights", "training (s)", *(f"KID a2b @{s}" for s in kept), f"KID b2a @{kept[-1]}",
            f"cycle L1 A @{kept[-1]}", f"cycle L1 B @{kept[-1]}", f"KID a2b per seed @{kept[-1]}"]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for variant in variants:
        for raw in (True, False):
            def mean(step, key):
                return statistics.mean(results[(variant, raw, s, step)][key] for s in seeds)
            secs = statistics.mean(results[(variant, "seconds", s, 0)] for s in seeds)
            per_seed = " / ".join(f"{results[(variant, raw, s, kept[-1])]['kid_a2b']:.4f}" for s in seeds)
            print("| " + " | ".join([variant, "trained (--raw)" if raw else "averaged", f"{secs:.0f}",
                                     *(f"{mean(s, 'kid_a2b'):.4f}" for s in kept), f"{mean(kept[-1], 'kid_b2a'):.4f}",
                                     f"{mean(kept[-1], 'cycle_l1_a'):.4f}", f"{mean(kept[-1], 'cycle_l1_b'):.4f}",
                                     per_seed]) + " |")


if __name__ == "__main__":
    main()
