"""Few training images: no augmentation vs ``diffaugment`` vs ``ada``, side by side.

On the ``synthetic`` dataset with thin structures (``structures: true``; hidden ground truth,
no download), ``--images`` training scenes per domain (48: the size of data/forest_abstract),
each objective of ``--objectives`` trains once per variant of ``--augment`` and seed of
``--seeds``, the variants interleaved (for each seed and objective: none, diffaugment, ada, one
after the other, so a change in the machine's load falls on all of them). Everything else is
the same: networks, data, adversarial loss, lr, steps.

At each of ``--steps`` the A->B generator is scored on the test scenes against the truth (L1 on
the [0, 1] scale over all pixels and per structure, as bench/quality.py) and with KID against the
real B test images (``tiny`` extractor: offline, comparable only within one table), and the
**overfitting signal** is read: the mean sign of D_B's verdict (its logits less the loss's
boundary, in eval mode, so not augmented) on every training B image (``r_train``, ADA's r_t
without augmentation) and on as many held-out B images (``r_held``). A discriminator that
memorises its training set calls those real (``r_train`` towards 1) while calling held-out real
images fake (``r_held`` falling): the gap is the overfitting. ADA's p is recorded too.

Runs can be split over several invocations (each under the shared CPU lock): ``--results FILE``
appends one JSON line per run; ``--report FILE`` (repeatable) reads such files and prints the
tables (``--out`` appends them to a markdown file)::

    python bench/augment.py --objectives cyclegan --seeds 0 --steps 0,20 --test-n 8   # smoke
    python bench/augment.py --objectives cyclegan,cut --seeds 0 --results /tmp/aug.jsonl
    python bench/augment.py --objectives cyclegan,cut --seeds 1 --results /tmp/aug.jsonl
    python bench/augment.py --report /tmp/aug.jsonl --out /tmp/augment.md
"""
import argparse
import json
import sys
import tempfile
from pathlib import Path

import torch

from quality import (_OnDevice, _mean, append_result, load_average, machine, objective_overrides,  # bench/ is on
                     recipe, scored_run, structure_scores)  # sys.path when run as a script

VARIANTS = {"none": ["augment=null"], "diffaugment": ["augment.name=diffaugment"], "ada": ["augment.name=ada"]}
D_OF_B = {"cyclegan": "d_b", "cut": "d", "fastcut": "d"}  # the discriminator that judges B images


def verdicts(d, images, boundary, batch_size=16):
    """Mean sign of ``d``'s logits less ``boundary`` over ``images``, in eval mode (no augmentation)."""
    training = d.training
    d.eval()
    try:
        with torch.no_grad():
            logits = torch.cat([d(images[i:i + batch_size]).float().flatten() for i in range(0, len(images), batch_size)])
    finally:
        d.train(training)
    return float(torch.sign(logits - boundary).mean())


def train_variant(args, objective, variant, seed, score_parts, workdir):
    """One run; returns {"steps": {step: scores}, "train_s", "wall"}."""
    from unpaired.engine.trainer import Trainer

    cfg = recipe(args, Path(workdir) / f"{objective}-{variant}-{seed}", structures=True,
                 extra=[*objective_overrides(objective, args.blocks), *VARIANTS[variant], f"train.seed={seed}",
                        *(f"augment.params.{kv}" for kv in args.augment_params.get(variant, ()))])
    trainer = Trainer(cfg)
    device = torch.device(args.device)
    a, truth, masks, b_train, b_held, evaluator = score_parts
    d = trainer.objective.networks()[D_OF_B[objective]]
    boundary = trainer.assembly.adversarial[0].boundary

    def score(model):
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            from unpaired.evaluation.evaluate import translators_of

            out = structure_scores(_OnDevice(translators_of(model)[0], device), a, truth, masks)
            out.update(evaluator(model))
            out["r_train"] = verdicts(d, b_train.to(device), boundary)
            out["r_held"] = verdicts(d, b_held.to(device), boundary)
            if trainer.augmentation is not None:
                out.update({k: float(v) for k, v in trainer.augmentation.metrics().items()})
        return out

    return scored_run(trainer, score, args.steps, "bench-augment")


def run(args):
    from unpaired.engine.build import build_dataset
    from unpaired.evaluation.evaluate import Evaluator
    from unpaired.plugins.synthetic import ground_truth_pairs, structure_masks, training_b

    a, truth = ground_truth_pairs(args.test_n, size=args.size, split="test", structures=True)
    masks = structure_masks(args.test_n, size=args.size, split="test", structures=True)
    b_train = training_b(args.n, size=args.size, structures=True)
    b_held = truth[: min(len(truth), args.n)]  # real B images no discriminator trained on
    with tempfile.TemporaryDirectory() as tmp:
        test = build_dataset(recipe(args, Path(tmp) / "probe", structures=True), test=True)
        evaluator = Evaluator(test, extractor="tiny", max_images=args.test_n, batch_size=16, device=args.device)
        parts = (a, truth, masks, b_train, b_held, evaluator)
        for seed in args.seeds:
            for objective in args.objectives:
                for variant in args.augment:  # interleaved: the variants of one seed and objective in a row
                    result = train_variant(args, objective, variant, seed, parts, tmp)
                    record = {"objective": objective, "augment": variant, "seed": seed, "images": args.n,
                              "size": args.size, "setup": setup_line(args), "machine": machine(),
                              "load": load_average(), **result}
                    last = result["steps"][str(args.steps[-1])]
                    print(f"{objective} {variant} seed {seed} ({args.n} images): {args.steps[-1]} steps, "
                          f"{result['train_s']:.0f} s CPU training, run {result['wall']:.0f} s; KID {last['kid_a2b']:.4f}, "
                          f"L1 {last['all']:.4f}, r_train {last['r_train']:+.2f}, r_held {last['r_held']:+.2f}",
                          file=sys.stderr, flush=True)
                    append_result(args.results, record)
    return 0


def setup_line(args):
    return (f"synthetic {args.size}px with thin structures, {args.test_n} test scenes; resnet ngf {args.ngf} "
            f"n_blocks {args.blocks}, patchgan ndf {args.ndf} n_layers 2, {args.adversarial} for every objective, "
            f"lr {args.lr}, batch 1, {args.device}, {args.threads} thread(s)"
            + "".join(f", {o}" for o in args.overrides)
            + "".join(f", {v}: {', '.join(p)}" for v, p in args.augment_params.items()))


# --------------------------------------------------------------------------- the report
STRUCTURES = (("all", "L1 all"), ("large", "large"), ("small", "small obj."), ("line_3px", "lines 3px"),
              ("line_2px", "lines 2px"), ("line_1px", "lines 1px"))


def _fmt(value, spec):
    return "-" if value is None or value != value else format(value, spec)


def report(paths):
    records = [json.loads(line) for p in paths for line in Path(p).read_text().splitlines() if line.strip()]
    if not records:
        return "no results"
    groups = {}
    for r in records:
        groups.setdefault((r["images"], r["objective"], r["augment"]), []).append(r)
    lines = []
    for images in sorted({k[0] for k in groups}):
        keys = [k for k in groups if k[0] == images]
        objectives = list(dict.fromkeys(k[1] for k in keys))
        variants = [v for v in VARIANTS if any(k[2] == v for k in keys)]
        steps = sorted({int(s) for k in keys for r in groups[k] for s in r["steps"]})
        last = str(steps[-1])
        seeds = sorted({r["seed"] for k in keys for r in groups[k]})
        lines += [f"**{images} training images per domain**, step {last} (means over seeds "
                  f"{', '.join(map(str, seeds))}; L1 on the [0, 1] scale against the hidden truth, lower is better; "
                  "KID ratio: against no augmentation, same objective):", ""]
        head = ["objective", "augment", *(n + " ↓" for _, n in STRUCTURES), "KID tiny ↓", "KID ratio",
                "r_train", "r_held", "gap", "ada p", "CPU s"]
        lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for o in objectives:
            base = None
            for v in variants:
                runs = [r for r in groups.get((images, o, v), []) if last in r["steps"]]
                if not runs:
                    continue
                s = {k: _mean([r["steps"][last].get(k, float("nan")) for r in runs])
                     for k in runs[0]["steps"][last]}
                if v == "none":
                    base = s["kid_a2b"]
                ratio = s["kid_a2b"] / base if base else float("nan")
                cpu = _mean([r["train_s"] for r in runs])
                lines.append("| " + " | ".join([o, v, *(_fmt(s[k], ".4f") for k, _ in STRUCTURES),
                                                _fmt(s["kid_a2b"], ".4f"), _fmt(ratio, ".2f"),
                                                _fmt(s["r_train"], "+.2f"), _fmt(s["r_held"], "+.2f"),
                                                _fmt(s["r_train"] - s["r_held"], ".2f"), _fmt(s.get("ada_p"), ".2f"),
                                                f"{cpu:.0f}"]) + " |")
        lines += ["", f"Over the steps ({images} images; r_train / r_held, means over the seeds; ada: p):", ""]
        head = ["objective", "augment", *map(str, steps)]
        lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for o in objectives:
            for v in variants:
                runs = groups.get((images, o, v), [])
                cells = []
                for st in map(str, steps):
                    have = [r["steps"][st] for r in runs if st in r["steps"]]
                    if not have:
                        cells.append("-")
                        continue
                    cell = f"{_mean([h['r_train'] for h in have]):+.2f} / {_mean([h['r_held'] for h in have]):+.2f}"
                    if "ada_p" in have[0]:
                        cell += f" (p {_mean([h['ada_p'] for h in have]):.2f})"
                    cells.append(cell)
                lines.append("| " + " | ".join([o, v, *cells]) + " |")
        lines += ["", f"KID tiny over the steps ({images} images, means over the seeds):", ""]
        lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for o in objectives:
            for v in variants:
                runs = groups.get((images, o, v), [])
                cells = [_fmt(_mean([r["steps"][st]["kid_a2b"] for r in runs if st in r["steps"]]), ".4f")
                         for st in map(str, steps)]
                lines.append("| " + " | ".join([o, v, *cells]) + " |")
        lines.append("")
    first = records[0]
    lines.append(f"Setup: {first['setup']}. Machine: {first['machine']}. Load average at the end of each run: "
                 f"{', '.join(sorted({r['load'] for r in records}))}.")
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--objectives", default="cyclegan,cut")
    p.add_argument("--augment", default="none,diffaugment,ada", help="variants, run in this order per seed and objective")
    p.add_argument("--augment-params", action="append", default=[], metavar="VARIANT:KEY=VALUE",
                   help="a param of one variant, e.g. ada:speed=500 (repeatable)")
    p.add_argument("--images", dest="n", type=int, default=48, help="training scenes per domain")
    p.add_argument("--steps", default="0,1000,2000,3000", help="comma-separated steps to score at")
    p.add_argument("--seeds", default="0,1")
    p.add_argument("--size", type=int, default=32)
    p.add_argument("--test-n", type=int, default=64, help="test scenes scored")
    p.add_argument("--ngf", type=int, default=8)
    p.add_argument("--blocks", type=int, default=2)
    p.add_argument("--ndf", type=int, default=16)
    p.add_argument("--adversarial", default="bce", help="the adversarial loss of every objective (as bench/quality.py)")
    p.add_argument("--lr", type=float, default=2e-4)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="more recipe overrides")
    p.add_argument("--results", default=None, help="append one JSON line per run to this file")
    p.add_argument("--report", action="append", default=None, metavar="FILE", help="print the tables of result files")
    p.add_argument("--out", default=None, help="with --report: also append the tables to this markdown file")
    args = p.parse_args(argv)
    if args.report:
        text = report(args.report)
        print(text)
        if args.out:
            with open(args.out, "a") as f:
                f.write("\n" + text + "\n")
        return 0
    args.steps = sorted({int(s) for s in args.steps.split(",")})
    args.seeds = [int(s) for s in args.seeds.split(",")]
    args.seed = args.seeds[0]
    args.objectives = [o.strip() for o in args.objectives.split(",") if o.strip()]
    args.augment = [v.strip() for v in args.augment.split(",") if v.strip()]
    for v in args.augment:
        if v not in VARIANTS:
            p.error(f"--augment: {v!r} is not one of {', '.join(VARIANTS)}")
    for o in args.objectives:
        if o not in D_OF_B:
            p.error(f"--objectives: {o!r} is not one of {', '.join(D_OF_B)}")
    params = {}
    for item in args.augment_params:
        variant, _, kv = item.partition(":")
        if variant not in VARIANTS or "=" not in kv:
            p.error(f"--augment-params {item!r}: expected VARIANT:KEY=VALUE, e.g. ada:speed=500")
        params.setdefault(variant, []).append(kv)
    args.augment_params = params
    torch.set_num_threads(args.threads)
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
