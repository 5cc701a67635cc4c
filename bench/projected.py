"""The projected discriminator (issue 31) against the PatchGAN, side by side, each with DiffAugment.

Variants (interleaved per seed):

    patchgan             the recipe's PatchGAN
    projected            discriminator.name=projected (frozen EfficientNet-Lite0, ``--size`` px input)
    projected+patchgan   the projected discriminator with a PatchGAN beside it (joliGEN's pairing)

``--data synthetic`` (default): the synthetic scenes with thin structures, ``--images`` a side,
scored at ``--steps`` against the hidden truth (L1 per structure, bench/quality.py) and with KID on
the ``tiny`` and the ``efficientnet_lite0`` features. ``--data forest``: the forest -> abstract
``--quick`` preview (48 + 48 shipped images) for ``--forest-steps`` steps with kept steps, each
scored by ``unpaired eval`` with both extractors. CPU seconds per run give the cost (time per step
and memory: ``bench/kit.py --cost``).

    python bench/projected.py --seeds 0,1 --images 48 --results /tmp/proj.jsonl
    python bench/projected.py --data forest --seeds 0,1 --forest-steps 1000,4000
    python bench/projected.py --report /tmp/proj.jsonl
"""
import json
import sys
import tempfile
from pathlib import Path

import torch

from quality import (_OnDevice, _mean, append_result, load_average, machine, recipe, scored_run, structure_scores,
                     synthetic_args, synthetic_parser)

VARIANTS = ("patchgan", "projected", "projected+patchgan")


def variant_overrides(args, variant, patchgan="{ndf: %d, n_layers: 2}"):
    """The recipe overrides of ``variant`` (the projected discriminator's params as one mapping:
    it replaces the PatchGAN's)."""
    if variant == "patchgan":
        return ["augment.name=diffaugment"]
    params = f"size: {args.size_d}, ndf: {args.ndf}"
    if variant == "projected+patchgan":
        params += ", patchgan: true, patchgan_params: " + (patchgan % args.ndf if "%d" in patchgan else patchgan)
    return ["augment.name=diffaugment", "discriminator.name=projected", f"discriminator.params={{{params}}}"]


def synthetic(args):
    from unpaired.engine.build import build_dataset
    from unpaired.engine.trainer import Trainer
    from unpaired.evaluation.evaluate import Evaluator, translators_of
    from unpaired.plugins.synthetic import ground_truth_pairs, structure_masks

    a, truth = ground_truth_pairs(args.test_n, size=args.size, split="test", structures=True)
    masks = structure_masks(args.test_n, size=args.size, split="test", structures=True)
    with tempfile.TemporaryDirectory() as tmp:
        test = build_dataset(recipe(args, Path(tmp) / "probe", structures=True), test=True)
        evaluators = {name: Evaluator(test, extractor=name, max_images=args.test_n, batch_size=16, device="cpu")
                      for name in ("tiny", "efficientnet_lite0")}
        for seed in args.seeds:
            for variant in args.variants:
                cfg = recipe(args, Path(tmp) / f"{variant}-{seed}", structures=True,
                             extra=[*variant_overrides(args, variant), f"train.seed={seed}"])
                trainer = Trainer(cfg)

                def score(model):
                    with torch.random.fork_rng():
                        out = structure_scores(_OnDevice(translators_of(model)[0], torch.device("cpu")), a, truth,
                                               masks)
                        for name, evaluator in evaluators.items():
                            out[f"kid_{name}"] = evaluator(model)["kid_a2b"]
                    return out

                result = scored_run(trainer, score, args.steps, "bench-projected")
                record = {"data": "synthetic", "variant": variant, "seed": seed, "images": args.n,
                          "setup": setup_line(args), "machine": machine(), "load": load_average(), **result}
                last = result["steps"][str(args.steps[-1])]
                print(f"{variant} seed {seed} ({args.n} images): {result['train_s']:.0f} s CPU; L1 {last['all']:.4f}, "
                      f"KID tiny {last['kid_tiny']:.4f}, KID effnet {last['kid_efficientnet_lite0']:.4f}",
                      file=sys.stderr, flush=True)
                append_result(args.results, record)
    return 0


def forest(args):
    from checkerboard import evaluate, precision_auto, resume, train  # bench/ is on sys.path when run as a script

    base = Path(args.forest_dir or tempfile.mkdtemp(prefix="projected_forest_"))
    steps = sorted(args.forest_steps)
    for seed in args.seeds:
        for variant in args.variants:
            run = base / f"{variant}_seed{seed}"
            resumed = (run / "config.yaml").exists()
            if resumed:  # a run of an earlier invocation: continued to the last step
                seconds = resume(run, steps[-1])
            else:
                # the preview's PatchGAN sizes beside the projected discriminator
                extra = variant_overrides(args, variant, "{ndf: 32, n_layers: 3}") + [f"train.keep_every={steps[0]}"]
                seconds = train(run, seed, steps[-1], *extra)
            scores = {f"{step}/{extractor}": evaluate(run, step, extractor)
                      for step in steps for extractor in ("tiny", "efficientnet_lite0")}
            record = {"data": "forest", "variant": variant, "seed": seed, "seconds": seconds, "scores": scores,
                      "resumed": resumed,
                      "setup": f"forest -> abstract --quick (64 px crops, resnet ngf 32 x 6, patchgan ndf 32 x 3), "
                               f"diffaugment, projected at {args.size_d} px, precision auto ({precision_auto()}), "
                               f"{torch.get_num_threads()} thread(s)",
                      "machine": machine(), "load": load_average()}
            append_result(args.results, record)
            print(f"{variant} seed {seed}: {seconds:.0f} s", file=sys.stderr, flush=True)
    return 0


def forest_report(records):
    """The preview's table: KID a2b on both extractors at each kept step, means over the seeds (a
    run continued by a later invocation: its records merged, its training seconds added up)."""
    runs = {}
    for r in records:
        run = runs.setdefault((r["variant"], r["seed"]), {"seconds": 0.0, "scores": {}})
        run["seconds"] += r["seconds"]
        run["scores"].update(r["scores"])
    steps = sorted({int(k.split("/")[0]) for run in runs.values() for k in run["scores"]})
    seeds = sorted({seed for _, seed in runs})
    head = ["discriminator", "training s (to its last step)", *(f"KID a2b {e} @{s}" for s in steps
                                                                 for e in ("tiny", "effnet")),
            "KID effnet per seed (last step)", "cycle L1 A (last step)"]
    lines = [f"**Forest preview** (means over seeds {', '.join(map(str, seeds))}; KID lower is better; the "
             "efficientnet_lite0 numbers are not comparable with Inception's):", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for variant in VARIANTS:
        mine = [runs[key] for key in sorted(runs) if key[0] == variant]
        if not mine:
            continue
        last = max(int(k.split("/")[0]) for k in mine[0]["scores"])
        cells = [variant, f"{_mean([m['seconds'] for m in mine]):.0f}"]
        for step in steps:
            for extractor in ("tiny", "efficientnet_lite0"):
                have = [m["scores"][f"{step}/{extractor}"]["kid_a2b"] for m in mine if f"{step}/{extractor}" in m["scores"]]
                cells.append(f"{_mean(have):.4f}" if len(have) == len(mine) else "–")
        cells.append(" / ".join(f"{m['scores'][f'{last}/efficientnet_lite0']['kid_a2b']:.4f}" for m in mine))
        cells.append(f"{_mean([m['scores'][f'{last}/tiny']['cycle_l1_a'] for m in mine]):.4f}")
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", f"Setup: {records[0]['setup']}. Machine: {records[0]['machine']}.", ""]
    return lines


def setup_line(args):
    return (f"CycleGAN + diffaugment, synthetic {args.size}px with thin structures, {args.test_n} test scenes; resnet "
            f"ngf {args.ngf} n_blocks {args.blocks}, patchgan ndf {args.ndf} n_layers 2, projected at {args.size_d} px, "
            f"{args.adversarial}, lr {args.lr}, batch 1, cpu, {args.threads} thread(s)")


def report(paths):
    records = [json.loads(line) for p in paths for line in Path(p).read_text().splitlines() if line.strip()]
    forest_runs = [r for r in records if r.get("data") == "forest"]
    records = [r for r in records if r.get("data") != "forest"]
    lines = forest_report(forest_runs) if forest_runs else []
    for images in sorted({r["images"] for r in records}):
        runs = [r for r in records if r["images"] == images]
        steps = sorted({int(s) for r in runs for s in r["steps"]})
        head = ["discriminator", "step", "L1 all", "L1 small", "L1 lines 1px", "KID tiny", "KID effnet", "CPU s"]
        lines += [f"**{images} training images per domain** (means over seeds "
                  f"{', '.join(map(str, sorted({r['seed'] for r in runs})))}):", "",
                  "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for variant in VARIANTS:
            mine = [r for r in runs if r["variant"] == variant]
            for step in map(str, steps):
                have = [r["steps"][step] for r in mine if step in r["steps"]]
                if have:
                    m = {k: _mean([h[k] for h in have]) for k in have[0]}
                    lines.append("| " + " | ".join([variant, step, f"{m['all']:.4f}", f"{m['small']:.4f}",
                                                    f"{m['line_1px']:.4f}", f"{m['kid_tiny']:.4f}",
                                                    f"{m['kid_efficientnet_lite0']:.4f}",
                                                    f"{_mean([r['train_s'] for r in mine]):.0f}"]) + " |")
        lines += ["", f"Setup: {runs[0]['setup']}. Machine: {runs[0]['machine']}.", ""]
    return "\n".join(lines)


def main(argv=None):
    p = synthetic_parser(__doc__, VARIANTS, "1000,5000")
    p.add_argument("--data", choices=("synthetic", "forest"), default="synthetic")
    p.add_argument("--forest-steps", default="1000,4000")
    p.add_argument("--forest-dir", default=None, help="where the preview runs live (default: a new temporary "
                   "folder); a run already there is continued to the last of --forest-steps")
    p.add_argument("--size-d", type=int, default=128, help="the projected discriminator's backbone input side")
    args = p.parse_args(argv)
    if args.report:
        print(report(args.report))
        return 0
    args = synthetic_args(args)
    args.forest_steps = [int(s) for s in args.forest_steps.split(",")]
    return forest(args) if args.data == "forest" else synthetic(args)


if __name__ == "__main__":
    sys.exit(main())
