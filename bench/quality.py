"""Translation quality against steps, on the ``synthetic`` dataset's hidden ground truth.

One unpaired training run of recipes/forest_abstract.yaml on ``synthetic`` (small nets, CPU by
default); at each of ``--steps`` the A->B generator is scored on the test split against the true
counterparts (L1 on the [0, 1] scale, PSNR, SSIM) and with KID against the real B test images
(``tiny`` extractor: offline, comparable only within this table). Row ``identity``: the do-nothing
baseline (output = input). The evaluation runs inside the training run, as a plugin on the
``on_step`` event, so the steps are those of one run.

    python bench/quality.py                                   # 32 px, steps 0,100,200,400,800
    python bench/quality.py --size 64 --steps 0,200,800 --out /tmp/quality.md   (results: BENCHMARKS.md)
"""
import argparse
import platform
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

from unpaired import hookimpl

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "recipes" / "forest_abstract.yaml"
COLUMNS = ("l1_a2b", "psnr_a2b", "ssim_a2b", "kid_a2b", "cycle_a")


def recipe(args, out_dir):
    from unpaired.config import load_recipe

    return load_recipe(RECIPE, [
        "data.name=synthetic", f"data.params={{size: {args.size}, n: {args.n}}}",
        f"data.test_params={{split: test, n: {args.test_n}}}", "data.num_workers=0",
        f"generator.params={{ngf: {args.ngf}, n_blocks: {args.blocks}}}",
        f"discriminator.params={{ndf: {args.ndf}, n_layers: 2}}",
        f"losses.adversarial.name={args.adversarial}", f"train.lr={args.lr}", f"train.seed={args.seed}",
        f"train.max_steps={max(args.steps)}", f"train.device={args.device}", "train.log_every=100",
        "train.sample_every=100000", "train.checkpoint_every=100000", "disable_plugins=[progress]",
        f"out_dir={out_dir}", *args.overrides,
    ])


class ScoreAt:
    """A runtime plugin: evaluate the model at the given steps of the run."""

    def __init__(self, evaluator, steps):
        self.evaluator, self.steps, self.rows, self.t0 = evaluator, set(steps), [], time.perf_counter()
        self.train_time = 0.0

    def _score(self, run, step):
        t = time.perf_counter()
        self.train_time += t - self.t0
        self.rows.append((str(step), self.evaluator(run.model), self.train_time))
        self.t0 = time.perf_counter()

    @hookimpl
    def on_train_start(self, run):
        if 0 in self.steps:
            self._score(run, 0)

    @hookimpl
    def on_step(self, run, step):
        if step in self.steps:
            self._score(run, step)


class MeanColour(nn.Module):
    """A constant baseline: every pixel the mean colour of one domain of the test set."""

    def __init__(self, dataset, domain):
        super().__init__()
        images = torch.stack([dataset[i][domain] for i in range(len(dataset))])
        self.register_buffer("colour", images.mean(dim=(0, 2, 3)).view(1, -1, 1, 1))

    def forward(self, x):
        return self.colour.expand(x.shape[0], -1, x.shape[2], x.shape[3])


def machine():
    from train_step import machine as machine_info  # bench/ is on sys.path when run as a script

    m = machine_info("cpu")
    return (f"{m['cpu']}, {m['cores']} cores visible, torch {m['torch']} with {m['torch_threads']} "
            f"threads, Python {m['python']}, {platform.system()}")


def table(rows):
    head = "| step | L1 (0-1) ↓ | PSNR dB ↑ | SSIM ↑ | KID tiny ↓ | cycle L1 ↓ | train s |"
    lines = [head, "|" + "---|" * 7]
    for step, s, secs in rows:
        lines.append(f"| {step} | {s['l1_a2b']:.4f} | {s['psnr_a2b']:.2f} | {s['ssim_a2b']:.3f} | "
                     f"{s['kid_a2b']:.4f} | {s['cycle_a']:.4f} | {secs if secs == '' else f'{secs:.0f}'} |")
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", type=int, default=32)
    p.add_argument("--steps", default="0,100,200,400,800", help="comma-separated steps to score at")
    p.add_argument("--n", type=int, default=64, help="training scenes per domain")
    p.add_argument("--test-n", type=int, default=64, help="test scenes scored")
    p.add_argument("--ngf", type=int, default=4)
    p.add_argument("--blocks", type=int, default=1)
    p.add_argument("--ndf", type=int, default=4)
    p.add_argument("--adversarial", default="bce", help="bce (the recipe's) or lsgan")
    p.add_argument("--lr", type=float, default=2e-4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=1,
                   help="torch threads (1: tiny nets gain nothing from more, and lose much on shared cores)")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="more recipe overrides, e.g. losses.identity.weight=0")
    p.add_argument("--out", default=None, help="also write the table, machine and command to this markdown file")
    args = p.parse_args(argv)
    args.steps = sorted({int(s) for s in args.steps.split(",")})
    torch.set_num_threads(args.threads)

    from unpaired.build import build_dataset
    from unpaired.evaluate import Evaluator
    from unpaired.loading import register_plugin, unregister_plugin
    from unpaired.trainer import Trainer

    with tempfile.TemporaryDirectory() as tmp:
        cfg = recipe(args, Path(tmp) / "run")
        test = build_dataset(cfg, test=True)  # aligned pairs: synthetic's test split says paired = True
        device = torch.device(args.device)
        evaluator = Evaluator(test, extractor="tiny", max_images=args.test_n, batch_size=16, device=device)
        identity = nn.Module()
        identity.g_ab, identity.g_ba = nn.Identity(), nn.Identity()
        rows = [("identity (do nothing)", evaluator(identity), "")]
        colour = nn.Module()  # knows the target palette: every pixel the test B images' mean colour
        colour.g_ab, colour.g_ba = MeanColour(test, "B"), MeanColour(test, "A")
        rows.append(("mean colour of the target", evaluator(colour), ""))
        scorer = ScoreAt(evaluator, args.steps)
        register_plugin(scorer, name="bench-quality")
        try:
            t0 = time.perf_counter()
            Trainer(cfg).run()
            wall = time.perf_counter() - t0
        finally:
            unregister_plugin("bench-quality")
        rows += scorer.rows

    command = "python bench/quality.py " + " ".join(argv if argv is not None else sys.argv[1:])
    setup = (f"synthetic {args.size}px, {args.n} training scenes, {args.test_n} test scenes; resnet ngf {args.ngf} "
             f"n_blocks {args.blocks}, patchgan ndf {args.ndf} n_layers 2, {args.adversarial}, lr {args.lr}, "
             f"batch 1, seed {args.seed}, {args.device}" + "".join(f", {o}" for o in args.overrides))
    text = table(rows)
    print(f"{setup}\n\n{text}\n\nrun wall time {wall:.0f} s (training and scoring); machine: {machine()}")
    if args.out:
        with open(args.out, "a") as f:
            f.write(f"\n### {setup}\n\n`{command.strip()}`\n\nMachine: {machine()}. Run wall time {wall:.0f} s "
                    f"(train s: training time only, cumulative).\n\n{text}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
