"""The training kit (issue 28) side by side: does the result hold as training goes on?

On the ``synthetic`` scenes with thin structures (hidden ground truth, no download),
``--images`` training scenes per domain, CycleGAN with the forest recipe's ``diffaugment``
trains once per variant and seed (interleaved: the variants of one seed in a row):

    base   the recipe as it is
    r1     + ``losses.adversarial.params.r1_gamma`` (``--r1-gamma``)
    ttur   + ``train.phase_lr: {d: --d-lr}`` (the discriminator at its own rate)

Every run keeps the averaged generator (``train.ema``, ``--ema``), which does not change what
trains, so each run is scored twice at each of ``--steps``: with the trained weights (the
variant's row) and with the averaged ones (its ``+ema`` row). Scores: L1 on the [0, 1] scale
against the truth (all pixels and per structure, as bench/quality.py) and KID against the real
B test images (``tiny`` extractor: offline, comparable only within one table). ``drift``: the
change of L1 from the first scored step to the last (positive: worse as training goes on).

``--cost`` instead times training steps of the forest preview's networks (64 px, the recipe's
``--quick`` sizes) for: base, ``train.ema``, R1 every step, R1 every 4th, batch 2 against
batch 1 x 2 accumulated (``train.accumulate``), and the projected discriminator (issue 31) in
place of the PatchGAN: seconds per step and peak memory (RSS growth) side by side in one
process, the variants interleaved over ``--rounds``.

    python bench/kit.py --seeds 0,1 --images 48 --results /tmp/kit.jsonl
    python bench/kit.py --seeds 0,1 --images 1000 --results /tmp/kit.jsonl
    python bench/kit.py --report /tmp/kit.jsonl --out /tmp/kit.md
    python bench/kit.py --cost
"""
import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

import torch

from quality import (_OnDevice, _mean, append_result, load_average, machine, recipe, scored_run, structure_scores,
                     synthetic_args, synthetic_parser)

VARIANTS = ("base", "r1", "ttur")


def variant_overrides(args, variant):
    extra = ["augment.name=diffaugment", f"train.ema={args.ema}"]
    if variant == "r1":
        extra.append(f"losses.adversarial.params.r1_gamma={args.r1_gamma}")
    if variant == "ttur":
        extra.append(f"train.phase_lr={{d: {args.d_lr}}}")
    return extra


def train_variant(args, variant, seed, parts, workdir):
    from unpaired.engine.trainer import Trainer
    from unpaired.evaluation.evaluate import translators_of

    cfg = recipe(args, Path(workdir) / f"{variant}-{seed}", structures=True,
                 extra=[*variant_overrides(args, variant), f"train.seed={seed}"])
    trainer = Trainer(cfg)
    a, truth, masks, evaluator = parts

    def score_now(model):
        out = structure_scores(_OnDevice(translators_of(model)[0], torch.device("cpu")), a, truth, masks)
        out.update(evaluator(model))
        return out

    def score(model):
        with torch.random.fork_rng():
            raw = score_now(model)
            with trainer.averaged_weights():
                averaged = score_now(model)
        return {"raw": raw, "ema": averaged}

    return scored_run(trainer, score, args.steps, "bench-kit")


def run(args):
    from unpaired.engine.build import build_dataset
    from unpaired.evaluation.evaluate import Evaluator
    from unpaired.plugins.synthetic import ground_truth_pairs, structure_masks

    a, truth = ground_truth_pairs(args.test_n, size=args.size, split="test", structures=True)
    masks = structure_masks(args.test_n, size=args.size, split="test", structures=True)
    with tempfile.TemporaryDirectory() as tmp:
        test = build_dataset(recipe(args, Path(tmp) / "probe", structures=True), test=True)
        evaluator = Evaluator(test, extractor="tiny", max_images=args.test_n, batch_size=16, device="cpu")
        for seed in args.seeds:
            for variant in args.variants:
                result = train_variant(args, variant, seed, (a, truth, masks, evaluator), tmp)
                record = {"variant": variant, "seed": seed, "images": args.n, "setup": setup_line(args),
                          "machine": machine(), "load": load_average(), **result}
                last = result["steps"][str(args.steps[-1])]
                print(f"{variant} seed {seed} ({args.n} images): {result['train_s']:.0f} s CPU training; "
                      f"L1 {last['raw']['all']:.4f} (ema {last['ema']['all']:.4f}), KID {last['raw']['kid_a2b']:.4f} "
                      f"(ema {last['ema']['kid_a2b']:.4f})", file=sys.stderr, flush=True)
                append_result(args.results, record)
    return 0


def setup_line(args):
    return (f"CycleGAN + diffaugment, synthetic {args.size}px with thin structures, {args.test_n} test scenes; "
            f"resnet ngf {args.ngf} n_blocks {args.blocks}, patchgan ndf {args.ndf} n_layers 2, {args.adversarial}, "
            f"lr {args.lr}, batch 1, cpu, {args.threads} thread(s); train.ema {args.ema}, r1_gamma {args.r1_gamma}, "
            f"ttur d lr {args.d_lr}")


# --------------------------------------------------------------------------- the report
COLUMNS = (("all", "L1 all"), ("small", "small obj."), ("line_2px", "lines 2px"), ("line_1px", "lines 1px"))


def report(paths):
    records = [json.loads(line) for p in paths for line in Path(p).read_text().splitlines() if line.strip()]
    lines = []
    for images in sorted({r["images"] for r in records}):
        runs = [r for r in records if r["images"] == images]
        steps = sorted({int(s) for r in runs for s in r["steps"]})
        first, last = str(steps[0]), str(steps[-1])
        seeds = sorted({r["seed"] for r in runs})
        lines += [f"**{images} training images per domain** (means over seeds {', '.join(map(str, seeds))}; "
                  "L1 on the [0, 1] scale against the hidden truth, lower is better; drift: L1 at step "
                  f"{last} less L1 at step {first}):", ""]
        head = ["variant", "weights", *(f"{n} @{s}" for s in (first, last) for _, n in COLUMNS[:1]),
                *(f"{n} @{last}" for _, n in COLUMNS[1:]), f"KID @{first}", f"KID @{last}", "L1 drift",
                "L1 per seed @" + last, "CPU s"]
        lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for variant in VARIANTS:
            mine = [r for r in runs if r["variant"] == variant and last in r["steps"]]
            if not mine:
                continue
            for weights in ("raw", "ema"):
                at = {s: {k: _mean([r["steps"][s][weights][k] for r in mine]) for k in mine[0]["steps"][s][weights]}
                      for s in (first, last)}
                per_seed = " / ".join(f"{r['steps'][last][weights]['all']:.4f}" for r in mine)
                label = variant if weights == "raw" else f"{variant} + ema"
                lines.append("| " + " | ".join([
                    label, "trained" if weights == "raw" else "averaged",
                    f"{at[first]['all']:.4f}", f"{at[last]['all']:.4f}",
                    *(f"{at[last][k]:.4f}" for k, _ in COLUMNS[1:]),
                    f"{at[first]['kid_a2b']:.4f}", f"{at[last]['kid_a2b']:.4f}",
                    f"{at[last]['all'] - at[first]['all']:+.4f}", per_seed,
                    f"{_mean([r['train_s'] for r in mine]):.0f}"]) + " |")
        lines += ["", f"L1 all over the steps ({images} images, means over the seeds):", ""]
        head = ["variant", *map(str, steps)]
        lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for variant in VARIANTS:
            mine = [r for r in runs if r["variant"] == variant]
            for weights in ("raw", "ema"):
                if not mine:
                    continue
                cells = [_fmt_mean([r["steps"][str(s)][weights]["all"] for r in mine if str(s) in r["steps"]])
                         for s in steps]
                lines.append("| " + " | ".join([variant + (" + ema" if weights == "ema" else ""), *cells]) + " |")
        lines += ["", f"Setup: {runs[0]['setup']}. Machine: {runs[0]['machine']}. Load average at the end of each "
                      f"run: {', '.join(r['load'] for r in runs)}.", ""]
    return "\n".join(lines)


def _fmt_mean(values):
    return f"{_mean(values):.4f}" if values else "-"


# --------------------------------------------------------------------------- the cost
COST_VARIANTS = {
    "base (batch 1)": [],
    "train.ema=0.999": ["train.ema=0.999"],
    "R1 every step": ["losses.adversarial.params.r1_gamma=1.0"],
    "R1 every 4th": ["losses.adversarial.params={r1_gamma: 1.0, r1_every: 4}"],
    "batch 2": ["data.batch_size=2"],
    "batch 1 x 2 accumulated": ["train.accumulate=2"],
    # issue 31: the projected discriminator in place of the PatchGAN (its default 224-px backbone input; 128 px)
    "projected D (224 px)": ["discriminator.name=projected"],
    "projected D (128 px)": ["discriminator.name=projected", "discriminator.params.size=128"],
    "projected D + PatchGAN": ["discriminator.name=projected",
                               "discriminator.params={patchgan: true, patchgan_params: {ndf: 32, n_layers: 3}}"],
}


def cost_one(args, name):
    """One variant's timing in this (fresh) process: {"s_per_step", "peak_rss_mb"}."""
    from unpaired.engine.trainer import Trainer
    from unpaired.recipe.config import load_recipe

    root = Path(__file__).resolve().parents[1]
    with tempfile.TemporaryDirectory() as tmp:
        cfg = load_recipe(root / "recipes" / "forest_abstract.yaml", [
            f"out_dir={tmp}/run", "train.max_steps=100000", "data.num_workers=0", "disable_plugins=[progress]",
            "train.log_every=100000", "train.sample_every=100000", "train.checkpoint_every=100000",
            "train.ema=null", *COST_VARIANTS[name]], quick=True)  # the recipe's averaged generator off but in one
        trainer = Trainer(cfg)
        loader, _ = trainer._start()
        batches = iter(loader)

        def step():
            batch = next(batches)
            trainer.train_step(trainer._to_device(batch["A"]), trainer._to_device(batch["B"]))
            trainer.step += 1

        for _ in range(args.warmup):
            step()
        t0 = time.perf_counter()
        for _ in range(args.cost_steps):
            step()
        seconds = (time.perf_counter() - t0) / args.cost_steps
    return {"s_per_step": seconds, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def cost(args):
    """Every variant in its own process (its own peak memory), interleaved over the rounds."""
    import subprocess

    times = {name: [] for name in COST_VARIANTS}
    memory = {}
    for rnd in range(args.rounds):
        for name in COST_VARIANTS:
            out = subprocess.run([sys.executable, __file__, "--cost-one", name, "--cost-steps", str(args.cost_steps),
                                  "--warmup", str(args.warmup)], capture_output=True, text=True, check=True)
            got = json.loads(out.stdout.strip().splitlines()[-1])
            times[name].append(got["s_per_step"])
            memory[name] = max(memory.get(name, 0.0), got["peak_rss_mb"])
            print(f"round {rnd} {name}: {got['s_per_step']:.3f} s/step, peak RSS {got['peak_rss_mb']:.0f} MB",
                  file=sys.stderr, flush=True)
    base = min(times["base (batch 1)"])
    lines = ["| variant | s/step (best of rounds) | ratio to base | images/step | peak RSS (MB) |",
             "|---|---|---|---|---|"]
    for name in COST_VARIANTS:
        n = 2 if name.startswith("batch") and "2" in name else 1
        lines.append(f"| {name} | {min(times[name]):.3f} | {min(times[name]) / base:.2f} | {n} | {memory[name]:.0f} |")
    lines += ["", f"forest preview (`--quick`: 64 px, resnet ngf 32 x 6 blocks, patchgan ndf 32) networks, "
                  f"{args.cost_steps} steps per variant after {args.warmup} warm-up, each variant in its own process, "
                  f"{args.rounds} interleaved rounds; {torch.get_num_threads()} threads. Machine: {machine()}; "
                  f"load average at the end: {load_average()}."]
    text = "\n".join(lines)
    print(text)
    if args.out:
        with open(args.out, "a") as f:
            f.write("\n" + text + "\n")
    return 0


def main(argv=None):
    p = synthetic_parser(__doc__, VARIANTS, "1000,2000,3000,4000,5000")
    p.add_argument("--ema", type=float, default=0.999)
    p.add_argument("--r1-gamma", type=float, default=1.0)
    p.add_argument("--d-lr", type=float, default=1e-4)
    p.add_argument("--out", default=None)
    p.add_argument("--cost", action="store_true")
    p.add_argument("--cost-one", default=None, help=argparse.SUPPRESS)
    p.add_argument("--cost-steps", type=int, default=30)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--rounds", type=int, default=2)
    args = p.parse_args(argv)
    if args.report:
        text = report(args.report)
        print(text)
        if args.out:
            with open(args.out, "a") as f:
                f.write("\n" + text + "\n")
        return 0
    if args.cost_one:
        print(json.dumps(cost_one(args, args.cost_one)))
        return 0
    if args.cost:
        return cost(args)
    return run(synthetic_args(args))


if __name__ == "__main__":
    sys.exit(main())
