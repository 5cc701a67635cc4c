"""Constraints (issue 29) side by side: is content kept, or invented, as training goes on?

On the ``synthetic`` scenes with thin structures, their A images labelled with what each pixel
shows (``labels: true``: background, large shapes, small objects, 1-, 2- and 3-px lines),
CycleGAN with the forest recipe's ``diffaugment`` trains once per variant and seed (interleaved):

    none            no constraint
    semantic        constraints: [semantic]   (its segmenter trained on the labelled A images)
    edges           constraints: [edges]      (no labels)
    semantic+edges  both

Scores at each of ``--steps`` on the test scenes: L1 against the hidden truth per structure
(bench/quality.py) and the **per-class agreement with the truth**: an oracle segmenter, trained
once per invocation on true B images (the hidden translations of other scenes) with their labels,
segments each translation G(a); its IoU with a's labels per class (thin lines and small objects
apart) says whether what was in a is still where it was. The oracle's own IoU on the true B test
images is the ceiling (printed). CPU seconds per run give the cost.

    python bench/constraints.py --seeds 0,1 --images 48 --results /tmp/cons.jsonl
    python bench/constraints.py --report /tmp/cons.jsonl
"""
import json
import sys
import tempfile
from pathlib import Path

import torch
import torch.nn.functional as F

from quality import (_OnDevice, _mean, append_result, load_average, machine, recipe, scored_run, structure_scores,
                     synthetic_args, synthetic_parser)

VARIANTS = {
    "none": [],
    "semantic": ["constraints=[{name: semantic}]"],
    "edges": ["constraints=[{name: edges}]"],
    "semantic+edges": ["constraints=[{name: semantic}, {name: edges}]"],
}
CLASSES = ("background", "large", "small", "line_1px", "line_2px", "line_3px")


def train_oracle(args):
    """A segmenter of true B images (the hidden translations of ``--oracle-n`` scenes of the
    train stream, which no run sees as pairs) and its IoU on the true B test images."""
    from unpaired.loading import get_registry
    from unpaired.plugins.synthetic import ground_truth_pairs, structure_masks

    a, b = ground_truth_pairs(args.oracle_n, size=args.size, split="train", structures=True)
    masks = structure_masks(args.oracle_n, size=args.size, split="train", structures=True)
    labels = torch.stack([masks[c] for c in CLASSES], 1).float().argmax(1)
    torch.manual_seed(1234)
    net = get_registry().create("generator", "resnet", {"ngf": 16, "n_blocks": 3}, in_channels=3,
                                out_channels=len(CLASSES))
    opt = torch.optim.Adam(net.parameters(), lr=2e-3)
    weight = 1.0 / torch.bincount(labels.flatten(), minlength=len(CLASSES)).float().clamp(min=1).sqrt()
    for step in range(args.oracle_steps):
        idx = torch.randint(len(b), (16,))
        opt.zero_grad()
        F.cross_entropy(net(b[idx]) * 8, labels[idx], weight=weight / weight.mean()).backward()
        opt.step()
    net.eval().requires_grad_(False)
    return net


def iou_scores(oracle, images, labels):
    with torch.no_grad():
        predicted = torch.cat([(oracle(images[i:i + 16]) * 8).argmax(1) for i in range(0, len(images), 16)])
    out = {}
    for k, name in enumerate(CLASSES):
        inter = ((predicted == k) & (labels == k)).sum().item()
        union = ((predicted == k) | (labels == k)).sum().item()
        out[f"iou_{name}"] = inter / union if union else float("nan")
    return out


def run(args):
    from unpaired.engine.build import build_dataset
    from unpaired.engine.trainer import Trainer
    from unpaired.evaluation.evaluate import Evaluator, translators_of
    from unpaired.plugins.synthetic import ground_truth_pairs, structure_masks

    a, truth = ground_truth_pairs(args.test_n, size=args.size, split="test", structures=True)
    masks = structure_masks(args.test_n, size=args.size, split="test", structures=True)
    labels = torch.stack([masks[c] for c in CLASSES], 1).float().argmax(1)
    oracle = train_oracle(args)
    ceiling = iou_scores(oracle, truth, labels)
    print("oracle on the true B test images: " + ", ".join(f"{k} {v:.3f}" for k, v in ceiling.items()),
          file=sys.stderr, flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        test = build_dataset(recipe(args, Path(tmp) / "probe", structures=True), test=True)
        evaluator = Evaluator(test, extractor="tiny", max_images=args.test_n, batch_size=16, device="cpu")
        for seed in args.seeds:
            for variant in args.variants:
                cfg = recipe(args, Path(tmp) / f"{variant}-{seed}", structures=True,
                             extra=["augment.name=diffaugment", "data.params.labels=true", f"train.seed={seed}",
                                    *VARIANTS[variant]])
                trainer = Trainer(cfg)

                def score(model):
                    with torch.random.fork_rng():
                        g = _OnDevice(translators_of(model)[0], torch.device("cpu"))
                        out = structure_scores(g, a, truth, masks)
                        out.update(evaluator(model))
                        with torch.no_grad():
                            fakes = torch.cat([g(a[i:i + 16]) for i in range(0, len(a), 16)])
                        out.update(iou_scores(oracle, fakes, labels))
                    return out

                result = scored_run(trainer, score, args.steps, "bench-constraints")
                record = {"variant": variant, "seed": seed, "images": args.n, "ceiling": ceiling,
                          "setup": setup_line(args), "machine": machine(), "load": load_average(), **result}
                last = result["steps"][str(args.steps[-1])]
                print(f"{variant} seed {seed}: {result['train_s']:.0f} s CPU; L1 {last['all']:.4f}, IoU lines 1px "
                      f"{last['iou_line_1px']:.3f}, small {last['iou_small']:.3f}", file=sys.stderr, flush=True)
                append_result(args.results, record)
    return 0


def setup_line(args):
    return (f"CycleGAN + diffaugment, synthetic {args.size}px with thin structures and A labels, {args.test_n} test "
            f"scenes; resnet ngf {args.ngf} n_blocks {args.blocks}, patchgan ndf {args.ndf} n_layers 2, "
            f"{args.adversarial}, lr {args.lr}, batch 1, cpu, {args.threads} thread(s); oracle: resnet ngf 16 x 3 "
            f"blocks, {args.oracle_steps} steps on {args.oracle_n} true B images")


def report(paths):
    records = [json.loads(line) for p in paths for line in Path(p).read_text().splitlines() if line.strip()]
    lines = []
    for images in sorted({r["images"] for r in records}):
        runs = [r for r in records if r["images"] == images]
        steps = sorted({int(s) for r in runs for s in r["steps"]})
        seeds = sorted({r["seed"] for r in runs})
        head = ["variant", "step", "L1 all", "L1 lines 1px", "L1 small", "IoU large", "IoU small", "IoU lines 1px",
                "IoU lines 2px", "IoU lines 3px", "KID", "CPU s"]
        lines += [f"**{images} training images per domain** (means over seeds {', '.join(map(str, seeds))}; L1 "
                  "against the hidden truth, lower is better; IoU of the oracle segmenter's reading of the "
                  "translation with the input's labels, higher is better):", "",
                  "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for variant in VARIANTS:
            mine = [r for r in runs if r["variant"] == variant]
            for step in map(str, steps):
                have = [r["steps"][step] for r in mine if step in r["steps"]]
                if not have:
                    continue
                m = {k: _mean([h[k] for h in have]) for k in have[0]}
                lines.append("| " + " | ".join([variant, step, f"{m['all']:.4f}", f"{m['line_1px']:.4f}",
                                                f"{m['small']:.4f}", f"{m['iou_large']:.3f}", f"{m['iou_small']:.3f}",
                                                f"{m['iou_line_1px']:.3f}", f"{m['iou_line_2px']:.3f}",
                                                f"{m['iou_line_3px']:.3f}", f"{m['kid_a2b']:.4f}",
                                                f"{_mean([r['train_s'] for r in mine]):.0f}"]) + " |")
        ceiling = runs[0]["ceiling"]
        lines += ["", "Oracle on the true B test images (the ceiling): "
                  + ", ".join(f"{k.removeprefix('iou_')} {v:.3f}" for k, v in ceiling.items()) + ".",
                  f"Setup: {runs[0]['setup']}. Machine: {runs[0]['machine']}.", ""]
    return "\n".join(lines)


def main(argv=None):
    p = synthetic_parser(__doc__, VARIANTS, "1000,5000")
    p.add_argument("--oracle-n", type=int, default=512)
    p.add_argument("--oracle-steps", type=int, default=1500)
    args = p.parse_args(argv)
    if args.report:
        print(report(args.report))
        return 0
    return run(synthetic_args(args))


if __name__ == "__main__":
    sys.exit(main())
