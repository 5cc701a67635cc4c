"""The forest -> abstract preview with and without augmenting what the discriminators see: the
recipe's ``--quick`` run (1,000 steps on the 48 + 48 shipped images) once per variant of
``--augment`` and seed, interleaved, each scored with ``unpaired eval --extractor tiny`` on the
recipe's test images (KID of each direction against the real target test images; offline,
comparable within this table only) and its wall time. What decides the recipe's default
``augment`` (docs/training.md, "Few images: augmentation").

    python bench/augment_forest.py                                  # none vs diffaugment, seeds 0, 1
    python bench/augment_forest.py --augment none,ada --seeds 0
"""
import argparse
import statistics
import tempfile
from pathlib import Path

from checkerboard import evaluate, precision_auto, train  # bench/ is on sys.path when run as a script
from quality import machine

COLUMNS = ("seconds", "kid_a2b", "kid_b2a", "cycle_l1_a", "cycle_l1_b")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--augment", default="none,diffaugment", help="variants: none or augmentation names")
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--keep", default=None, help="keep the runs in this folder (default: a temporary one)")
    args = parser.parse_args()
    variants = [v.strip() for v in args.augment.split(",") if v.strip()]
    base = Path(args.keep or tempfile.mkdtemp(prefix="augment_forest_"))
    rows = {v: [] for v in variants}
    for seed in [int(s) for s in args.seeds.split(",")]:
        for variant in variants:  # interleaved: a change in the machine's load hits all alike
            run = base / f"{variant}_seed{seed}"
            choice = "augment=null" if variant == "none" else f"augment.name={variant}"
            row = {"seconds": train(run, seed, args.steps, choice), **evaluate(run)}
            rows[variant].append(row)
            print(f"{variant} seed {seed}: " + ", ".join(f"{k} {row[k]:.4g}" for k in COLUMNS), flush=True)
    print(f"\n{args.steps} steps, seeds {args.seeds}; {machine()}; precision auto ({precision_auto()})\n")
    print("| augment | training (s) | KID a2b | KID b2a | cycle L1 A | cycle L1 B | KID a2b per seed |")
    print("|---|---|---|---|---|---|---|")
    for variant, got in rows.items():
        mean = {k: statistics.mean(r[k] for r in got) for k in COLUMNS}
        seeds = " / ".join(f"{r['kid_a2b']:.4f}" for r in got)
        print(f"| {variant} | {mean['seconds']:.0f} | {mean['kid_a2b']:.4f} | {mean['kid_b2a']:.4f} | "
              f"{mean['cycle_l1_a']:.4f} | {mean['cycle_l1_b']:.4f} | {seeds} |")


if __name__ == "__main__":
    main()
