"""Translation quality against steps, on the ``synthetic`` dataset's hidden ground truth.

One unpaired training run of recipes/forest_abstract.yaml on ``synthetic`` (small nets, CPU by
default); at each of ``--steps`` the A->B generator is scored on the test split against the true
counterparts (L1 on the [0, 1] scale, PSNR, SSIM) and with KID against the real B test images
(``tiny`` extractor: offline, comparable only within this table). Row ``identity``: the do-nothing
baseline (output = input). The evaluation runs inside the training run, as a plugin on the
``on_step`` event, so the steps are those of one run.

    python bench/quality.py                                   # 32 px, steps 0,100,200,400,800
    python bench/quality.py --size 64 --steps 0,200,800 --out /tmp/quality.md   (results: BENCHMARKS.md)

**Objectives side by side** (``--objectives cyclegan,cut,fastcut``): the scenes get thin
structures (``data.params.structures=true``: lines exactly 1, 2 and 3 px wide and small objects
2-5 px across over the large regions, with per-pixel masks), and each objective trains in turn in
this process, from the same seed, with the same networks, data, adversarial loss and lr. Scores:
L1 (0-1) against the truth on all pixels and on each structure's pixels (background, large
regions, small objects, lines 3/2/1 px), PSNR, SSIM and KID (tiny). Two tables, means over
``--seeds``:

(a) **equal steps**: the scores at each of ``--steps``;
(b) **equal training time**: each objective trains until it has done ``max(--steps)`` steps *and*
    spent ``--seconds`` of training time, and is scored at the first step at which its training
    time reaches each value of ``--seconds``. Without ``--seconds`` the budget is the training
    time the first objective of the first seed took for ``max(--steps)`` steps (list the slowest
    objective first, so every objective reaches all of ``--steps``). Training time excludes the
    scoring; ``--clock cpu`` counts this process's CPU seconds instead of wall seconds (steadier
    on a shared machine; with ``--threads 1`` the two agree on a quiet one).

For the CUT objectives (and UNSB) the bench sets ``objective.params.nce_layers`` to input, down1,
down2, block1 and the last block when the generator has fewer than 5 blocks (the default names
block5); an objective that needs conditioned networks (UNSB: unpaired.engine.conditions) gets the params
the generator and discriminator name for it (``conditioning``). The recipe's ``losses.cycle`` and
``losses.identity`` stay: the one-sided objectives ignore them (one warning line each).

Per run the bench also measures the **translation cost**: the translator (``translator("a2b")``,
UNSB's 5-step sampler) on the test images one at a time after training, in ms per image, and
the generator passes it makes per image (counted with forward hooks on the networks
``parts.generator`` built).

Long comparisons split by seed, each piece its own process (``--seeds 0``, then ``--seeds 1``,
with the same ``--seconds``); ``--out`` appends each piece's tables.

    python bench/quality.py --objectives cyclegan,cut,fastcut --size 32 --steps 0,5,10 --test-n 8   # smoke
    python bench/quality.py --objectives cyclegan,cut,fastcut --size 64 --ngf 8 --ndf 8 --blocks 2 \
        --steps 0,250,500,1000 --seeds 0,1 --out /tmp/quality_objectives.md
"""
import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

from unpaired import hookimpl
from unpaired.engine.restore import Translators

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "recipes" / "forest_abstract.yaml"
COLUMNS = ("l1_a2b", "psnr_a2b", "ssim_a2b", "kid_a2b", "cycle_l1_a")


def recipe(args, out_dir, structures=False, extra=()):
    from unpaired.recipe.config import load_recipe

    structures = ", structures: true" if structures else ""
    return load_recipe(RECIPE, [
        "data.name=synthetic", f"data.params={{size: {args.size}, n: {args.n}{structures}}}",
        f"data.test_params={{split: test, n: {args.test_n}}}", "data.num_workers=0",
        f"generator.params={{ngf: {args.ngf}, n_blocks: {args.blocks}}}",
        f"discriminator.params={{ndf: {args.ndf}, n_layers: 2}}",
        f"losses.adversarial.name={args.adversarial}", f"train.lr={args.lr}", f"train.seed={args.seed}",
        f"train.max_steps={max(args.steps)}", f"train.device={args.device}", "train.log_every=100",
        "train.sample_every=100000", "train.checkpoint_every=100000", "disable_plugins=[progress]",
        f"out_dir={out_dir}", *extra, *args.overrides,
    ])


class ScoreAt:
    """A runtime plugin: evaluate the model at the given steps of the run."""

    def __init__(self, evaluator, steps):
        self.evaluator, self.steps, self.rows, self.t0 = evaluator, set(steps), [], time.perf_counter()
        self.train_time = 0.0

    def _score(self, run, step):
        t = time.perf_counter()
        self.train_time += t - self.t0
        self.rows.append((str(step), self.evaluator(run.objective), self.train_time))
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


def load_average():
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def table(rows):
    head = "| step | L1 (0-1) ↓ | PSNR dB ↑ | SSIM ↑ | KID tiny ↓ | cycle L1 ↓ | train s |"
    lines = [head, "|" + "---|" * 7]
    for step, s, secs in rows:
        lines.append(f"| {step} | {s['l1_a2b']:.4f} | {s['psnr_a2b']:.2f} | {s['ssim_a2b']:.3f} | "
                     f"{s['kid_a2b']:.4f} | {s['cycle_l1_a']:.4f} | {secs if secs == '' else f'{secs:.0f}'} |")
    return "\n".join(lines)


# --------------------------------------------------------------------------- objectives side by side
class StopRun(Exception):
    """Raised from on_step once a run has what it needs (the engine's loop ends by it)."""


def structure_scores(g, a, truth, masks, batch_size=16):
    """L1 on the [0, 1] scale of ``g(a)`` against ``truth`` (N, C, H, W in [-1, 1]) over all
    pixels (``all``) and over each mask's pixels, pooled over the images: ``masks`` is
    ``{name: bool (N, H, W)}``. Also ``lines``: the union of the masks named ``line_*``.
    A mask with no pixel scores NaN."""
    from unpaired.evaluation.metrics import l1

    training = g.training
    g.eval()
    try:
        with torch.no_grad():
            fake = torch.cat([g(a[i:i + batch_size]).float() for i in range(0, len(a), batch_size)])
    finally:
        g.train(training)
    err = (fake - truth).abs().mean(dim=1) / 2  # per pixel, mean over channels, [0, 1] scale
    scores = {"all": float(l1(fake, truth).mean())}
    lines = [m for name, m in masks.items() if name.startswith("line_")]
    masks = {**masks, "lines": torch.stack(lines).any(0)} if lines else dict(masks)
    for name, m in masks.items():
        scores[name] = float(err[m].mean()) if m.any() else float("nan")
    return scores


STRUCTURE_COLUMNS = (("all", "L1 all"), ("background", "background"), ("large", "large regions"),
                     ("small", "small objects"), ("line_3px", "lines 3px"), ("line_2px", "lines 2px"),
                     ("line_1px", "lines 1px"))
QUALITY_COLUMNS = (("psnr_a2b", "PSNR dB ↑"), ("ssim_a2b", "SSIM ↑"), ("kid_a2b", "KID tiny ↓"))


CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}  # --clock: seconds of wall or process CPU time


class ScoreRun:
    """A runtime plugin for one run: ``score(model)`` at ``steps`` and at the first step whose
    training time (scoring excluded; ``clock()`` seconds) reaches each of ``marks``; it stops the
    run (raises StopRun) once it has them all."""

    def __init__(self, score, steps, marks, clock):
        self.score, self.steps, self.marks, self.now = score, sorted(steps), sorted(marks or ()), clock
        self.at_step, self.at_mark = {}, {}  # step -> (scores, train s); mark -> (step, scores, train s)
        self.train_time, self.t0, self.step = 0.0, clock(), 0

    def _take(self, run):
        self.train_time += self.now() - self.t0
        return self.score(run.objective)

    def _record(self, run, step):
        self.step = step
        due_step = step in self.steps
        due_marks = []
        if self.marks:  # the clock is read only where needed (it stops while scoring)
            elapsed = self.train_time + self.now() - self.t0
            due_marks = [m for m in self.marks if m not in self.at_mark and elapsed >= m]
        if not (due_step or due_marks):
            return
        scores = self._take(run)
        if due_step:
            self.at_step[step] = (scores, self.train_time)
        for m in due_marks:
            self.at_mark[m] = (step, scores, self.train_time)
        self.t0 = self.now()

    def done(self):
        return self.step >= self.steps[-1] and len(self.at_mark) == len(self.marks)

    @hookimpl
    def on_train_start(self, run):
        self.t0 = self.now()
        if 0 in self.steps:
            self.at_step[0] = (self._take(run), 0.0)
            self.t0 = self.now()

    @hookimpl
    def on_step(self, run, step):
        self._record(run, step)
        if self.done():
            raise StopRun


def synthetic_parser(doc, variants, steps):
    """The arguments every side-by-side bench on the synthetic scenes takes (bench/kit.py,
    constraints.py, projected.py); each adds its own."""
    p = argparse.ArgumentParser(description=doc.splitlines()[0])
    p.add_argument("--seeds", default="0")
    p.add_argument("--variants", default=",".join(variants))
    p.add_argument("--images", dest="n", type=int, default=48)
    p.add_argument("--steps", default=steps)
    p.add_argument("--size", type=int, default=32)
    p.add_argument("--test-n", type=int, default=64)
    p.add_argument("--ngf", type=int, default=8)
    p.add_argument("--ndf", type=int, default=16)
    p.add_argument("--blocks", type=int, default=2)
    p.add_argument("--adversarial", default="bce")
    p.add_argument("--lr", type=float, default=2e-4)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--results", default=None)
    p.add_argument("--report", action="append", default=[])
    return p


def synthetic_args(args):
    """The parsed common arguments in the form the benches use (and torch's threads set)."""
    args.overrides, args.device = [], "cpu"
    args.steps = sorted({int(s) for s in args.steps.split(",")})
    args.seeds = [int(s) for s in args.seeds.split(",")]
    args.seed = args.seeds[0]
    args.variants = [v for v in args.variants.split(",") if v]
    torch.set_num_threads(args.threads)
    return args


def append_result(path, record):
    """One run's record as a JSON line of ``path`` (the benches' ``--results``); None: not kept."""
    if path:
        with open(path, "a") as f:
            f.write(json.dumps(record) + "\n")


def scored_run(trainer, score, steps, name):
    """Run ``trainer`` with ``score(model)`` taken at ``steps`` (:class:`ScoreRun`, CPU time)
    until the last of them; returns {"steps": {step: scores}, "train_s", "wall"}."""
    from unpaired.loading import register_plugin, unregister_plugin

    scorer = ScoreRun(score, steps, None, time.process_time)
    register_plugin(scorer, name=name)
    wall0 = time.perf_counter()
    try:
        trainer.run()
    except StopRun:
        pass
    finally:
        unregister_plugin(name)
    return {"steps": {str(s): sc for s, (sc, _) in scorer.at_step.items()}, "train_s": scorer.train_time,
            "wall": time.perf_counter() - wall0}


def objective_overrides(name, blocks):
    """Recipe overrides that let objective ``name`` run on a resnet with ``blocks`` blocks: the
    CUT objectives' default nce_layers name block5, so fewer blocks get input, down1, down2,
    block1 and the last block."""
    from unpaired.loading import get_registry

    from unpaired.engine import conditions

    registry = get_registry()
    factory = registry.entry("objective", name, "objective.name").factory
    out = [f"objective.name={name}"]
    if "nce_layers" in registry.entry("objective", name, "objective.name").parameters() and blocks < 5:
        layers = list(dict.fromkeys(["input", "down1", "down2", "block1", f"block{blocks}"]))
        out.append(f"objective.params.nce_layers=[{', '.join(layers)}]")
    for kind, network in (("generator", "resnet"), ("discriminator", "patchgan")):
        enable = conditions.enabling_params(registry.entry(kind, network).factory, conditions.needed(factory, kind))
        out += [f"{kind}.params.{k}=[{', '.join(v)}]" for k, v in enable.items()]
    return out


def translation_cost(trainer, images):
    """(ms per image, generator passes per image) of the a2b translator on ``images`` (N, C, H,
    W), one at a time, in eval mode without gradients."""
    from unpaired.engine.objective import translator_of

    translator = translator_of(trainer.objective, "a2b")
    nets = trainer.assembly.networks_of("generator")
    calls = [0]
    hooks = [n.register_forward_hook(lambda *_: calls.__setitem__(0, calls[0] + 1)) for n in nets]
    modes = [n.training for n in trainer.objective.networks().values()]
    for n in trainer.objective.networks().values():
        n.eval()
    try:
        with torch.no_grad(), torch.random.fork_rng():
            translator(images[:1])  # warm-up
            calls[0] = 0
            t0 = time.perf_counter()
            for i in range(len(images)):
                translator(images[i:i + 1])
            seconds = time.perf_counter() - t0
    finally:
        for h in hooks:
            h.remove()
        for n, mode in zip(trainer.objective.networks().values(), modes):
            n.train(mode)
    return 1000 * seconds / len(images), calls[0] / len(images)


def others_share(busy0, own0, wall0):
    """The share of the machine's cores that other processes used since (busy0, own0, wall0)."""
    from train_step import busy_seconds

    busy = busy_seconds()
    if busy is None or busy0 is None:
        return None
    wall = time.perf_counter() - wall0
    own = time.process_time() - own0
    return max(0.0, (busy - busy0 - own) / (wall * (os.cpu_count() or 1)))


def train_objective(args, name, seed, marks, score, workdir, images):
    """One run of objective ``name`` from ``seed``; returns its ScoreRun and wall/contention info."""
    from train_step import busy_seconds
    from unpaired.loading import register_plugin, unregister_plugin
    from unpaired.engine.trainer import Trainer

    max_steps = max(args.steps) if not marks else 10**9  # with a time budget the scorer stops the run
    cfg = recipe(args, Path(workdir) / f"{name}-{seed}", structures=True,
                 extra=[*objective_overrides(name, args.blocks), f"train.seed={seed}", f"train.max_steps={max_steps}"])
    scorer = ScoreRun(score, args.steps, marks, CLOCKS[args.clock])
    trainer = Trainer(cfg)
    register_plugin(scorer, name="bench-quality")
    busy0, own0, wall0 = busy_seconds(), time.process_time(), time.perf_counter()
    try:
        trainer.run()
    except StopRun:
        pass
    finally:
        unregister_plugin("bench-quality")
    missing = [m for m in scorer.marks if m not in scorer.at_mark]
    if missing or scorer.step < max(args.steps):
        print(f"warning: {name} seed {seed} ended at step {scorer.step} (the recipe's epochs) before "
              f"reaching step {max(args.steps)} and {max(scorer.marks or [0]):.0f} s", file=sys.stderr)
    info = {"wall": time.perf_counter() - wall0, "steps": scorer.step, "train_s": scorer.train_time,
            "others": others_share(busy0, own0, wall0)}
    info["translate_ms"], info["passes"] = translation_cost(trainer, images)
    return scorer, info


def _mean(values):
    values = [v for v in values if v == v]  # NaN: not scored
    return sum(values) / len(values) if values else float("nan")


def _cells(scores):
    out = [f"{scores[k]:.4f}" for k, _ in STRUCTURE_COLUMNS]
    out += [f"{scores['psnr_a2b']:.2f}", f"{scores['ssim_a2b']:.3f}", f"{scores['kid_a2b']:.4f}"]
    return out


def _head(first):
    names = [*first, *(f"{label} ↓" for _, label in STRUCTURE_COLUMNS), *(label for _, label in QUALITY_COLUMNS)]
    return ["| " + " | ".join(names) + " |", "|" + "---|" * len(names)]


def _averaged(runs):
    """Scores averaged over the seeds' runs (a list of score dicts)."""
    return {k: _mean([r[k] for r in runs]) for k in runs[0]}


def best_line(label, by_objective):
    """One line naming the best objective for each column (lower L1 and KID, higher PSNR/SSIM)."""
    parts = []
    for key, name in (*STRUCTURE_COLUMNS, *QUALITY_COLUMNS):
        values = {o: s[key] for o, s in by_objective.items() if s[key] == s[key]}
        if not values:
            continue
        pick = max if key in ("psnr_a2b", "ssim_a2b") else min
        best = pick(values, key=values.get)
        parts.append(f"{name.replace(' ↓', '').replace(' ↑', '')}: {best}")
    return f"Best {label}: " + "; ".join(parts) + "."


def steps_table(args, results):
    """(a): per objective and step, the scores averaged over the seeds."""
    lines = [f"(a) **Equal steps** (mean over seeds {', '.join(map(str, args.seeds))}; train s: mean training "
             f"time to that step, {args.clock} clock):", "", *_head(["objective", "step", "train s"])]
    last = {}
    for o in args.objectives:
        for step in args.steps:
            runs = [results[o, s].at_step[step] for s in args.seeds if step in results[o, s].at_step]
            if not runs:
                continue
            scores = _averaged([r[0] for r in runs])
            if step == args.steps[-1]:
                last[o] = scores
            lines.append(f"| {o} | {step} | {_mean([r[1] for r in runs]):.1f} | " + " | ".join(_cells(scores)) + " |")
    if last:
        lines += ["", best_line(f"at step {args.steps[-1]}", last)]
    return lines


def time_table(args, results, marks):
    """(b): per budget and objective, the scores at the budget averaged over the seeds."""
    lines = [f"(b) **Equal training time** ({args.clock} clock; each objective scored at the first step at which "
             "its training time reached the budget; steps reached: per seed):", "",
             *_head(["objective", "budget s", "steps reached"])]
    best = []
    for m in marks:
        at_budget = {}
        for o in args.objectives:
            runs = [results[o, s].at_mark[m] for s in args.seeds if m in results[o, s].at_mark]
            if not runs:
                lines.append(f"| {o} | {m:.1f} | not reached | " + " | ".join(["-"] * 10) + " |")
                continue
            at_budget[o] = scores = _averaged([r[1] for r in runs])
            steps = ", ".join(str(r[0]) for r in runs)
            lines.append(f"| {o} | {m:.1f} | {steps} | " + " | ".join(_cells(scores)) + " |")
        if at_budget:
            best.append(best_line(f"at {m:.1f} s", at_budget))
    return [*lines, *(x for b in best for x in ("", b))]


def runs_tables(args, results, infos):
    """Per run: steps, speed and contention; then every score taken."""
    lines = ["Per run (train s/step: training time over the steps it ran; translate: the a2b translator on "
             "the test images one at a time after training, ms per image and generator passes per image; "
             "others: the share of the cores other processes used during the run):", "",
             "| objective | seed | steps run | train s | train s/step | translate ms/img | G passes/img | "
             "run wall s | others |", "|---|---|---|---|---|---|---|---|---|"]
    for o in args.objectives:
        for s in args.seeds:
            i = infos[o, s]
            others = "-" if i["others"] is None else f"{100 * i['others']:.0f}%"
            lines.append(f"| {o} | {s} | {i['steps']} | {i['train_s']:.1f} | "
                         f"{i['train_s'] / max(i['steps'], 1):.3f} | {i['translate_ms']:.1f} | {i['passes']:g} | "
                         f"{i['wall']:.0f} | {others} |")
    lines += ["", *_head(["objective", "seed", "step"])]
    for o in args.objectives:
        for s in args.seeds:
            r = results[o, s]
            rows = [(str(step), sc) for step, (sc, _) in sorted(r.at_step.items())]
            rows += [(f"{st} (at {m:.1f} s)", sc) for m, (st, sc, _) in sorted(r.at_mark.items())]
            lines += [f"| {o} | {s} | {label} | " + " | ".join(_cells(sc)) + " |" for label, sc in rows]
    return lines


def objectives_report(args, baselines, results, marks, infos):
    """Markdown: baselines, (a) equal steps, (b) equal training time, per-run detail."""
    lines = ["Baselines (no training), per structure:", "", *_head(["baseline"])]
    lines += [f"| {label} | " + " | ".join(_cells(scores)) + " |" for label, scores in baselines]
    lines += ["", *steps_table(args, results), "", *time_table(args, results, marks), "",
              *runs_tables(args, results, infos)]
    return "\n".join(lines)


def compare_objectives(args, argv):
    from unpaired.engine.build import build_dataset
    from unpaired.evaluation.evaluate import Evaluator, translators_of
    from unpaired.plugins.synthetic import ground_truth_pairs, structure_masks

    t_start, load_start = time.perf_counter(), load_average()
    a, truth = ground_truth_pairs(args.test_n, size=args.size, split="test", structures=True)
    masks = structure_masks(args.test_n, size=args.size, split="test", structures=True)
    with tempfile.TemporaryDirectory() as tmp:
        test = build_dataset(recipe(args, Path(tmp) / "probe", structures=True), test=True)
        evaluator = Evaluator(test, extractor="tiny", max_images=args.test_n, batch_size=16, device=args.device)
        device = torch.device(args.device)

        def score(model):
            # the Evaluator's DataLoader draws a seed from torch's global RNG: without the fork,
            # where the scores fall (time marks) would change the training that follows
            with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
                g_ab = translators_of(model)[0]
                out = structure_scores(_OnDevice(g_ab, device), a, truth, masks)
                out.update(evaluator(model))
            return out

        baselines = []
        identity = Translators({"a2b": nn.Identity(), "b2a": nn.Identity()}, {"a2b": "identity", "b2a": "identity"})
        colour = Translators({"a2b": MeanColour(test, "B"), "b2a": MeanColour(test, "A")}, {"a2b": "mean", "b2a": "mean"})
        for label, model in (("identity (do nothing)", identity), ("mean colour of the target", colour)):
            baselines.append((label, score(model)))

        marks = list(args.seconds) if args.seconds else None
        results, infos = {}, {}
        for seed in args.seeds:
            for name in args.objectives:
                scorer, info = train_objective(args, name, seed, marks, score, tmp, a)
                results[name, seed], infos[name, seed] = scorer, info
                print(f"{name} seed {seed}: {info['steps']} steps, {info['train_s']:.1f} s training "
                      f"({info['train_s'] / max(info['steps'], 1):.3f} s/step), run {info['wall']:.0f} s", file=sys.stderr)
                if marks is None:  # the budget: the first run's training time for all of --steps
                    marks = [scorer.at_step[args.steps[-1]][1]]
                    scorer.at_mark[marks[0]] = (args.steps[-1], *scorer.at_step[args.steps[-1]])
    wall = time.perf_counter() - t_start

    command = "python bench/quality.py " + " ".join(argv if argv is not None else sys.argv[1:])
    budget = "--seconds" if args.seconds else f"the first run's ({args.objectives[0]}, seed {args.seeds[0]}) training time"
    setup = (f"objectives {', '.join(args.objectives)} on synthetic {args.size}px with thin structures, {args.n} "
             f"training scenes, {args.test_n} test scenes; resnet ngf {args.ngf} n_blocks {args.blocks}, patchgan "
             f"ndf {args.ndf} n_layers 2, {args.adversarial}, lr {args.lr}, batch 1, seeds "
             f"{', '.join(map(str, args.seeds))}, {args.device}, {args.threads} thread(s)"
             + "".join(f", {o}" for o in args.overrides))
    text = objectives_report(args, baselines, results, marks, infos)
    footer = (f"Machine: {machine()}; load average {load_start} at the start, {load_average()} at the end. "
              f"Whole bench wall time {wall:.0f} s; time budget of (b): {budget}. L1 on the [0, 1] scale over "
              "each structure's pixels of all test images. The seeds vary the training (initial weights, data "
              "order, B pairing), not the scenes; each objective builds its own networks, so their step-0 "
              "generators differ.")
    print(f"{setup}\n\n{text}\n\n{footer}")
    if args.out:
        with open(args.out, "a") as f:
            f.write(f"\n### {setup}\n\n`{command.strip()}`\n\n{footer}\n\n{text}\n")
    return 0


class _OnDevice(nn.Module):
    """Runs ``net`` on ``device`` for CPU tensors."""

    def __init__(self, net, device):
        super().__init__()
        self.net, self.device = net, device

    def forward(self, x):
        return self.net(x.to(self.device)).cpu()


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
    p.add_argument("--objectives", default=None,
                   help="comma-separated objectives to compare on scenes with thin structures, e.g. cyclegan,cut,fastcut")
    p.add_argument("--seeds", default=None, help="with --objectives: comma-separated seeds (default: --seed)")
    p.add_argument("--seconds", default=None,
                   help="with --objectives: comma-separated training-time budgets for the equal-time table "
                        "(default: the first objective's training time for all of --steps)")
    p.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                   help="with --objectives: what training time counts (cpu: this process's CPU seconds)")
    args = p.parse_args(argv)
    args.steps = sorted({int(s) for s in args.steps.split(",")})
    torch.set_num_threads(args.threads)
    if args.objectives is not None:
        args.objectives = [o.strip() for o in args.objectives.split(",") if o.strip()]
        args.seeds = [int(s) for s in args.seeds.split(",")] if args.seeds else [args.seed]
        args.seconds = sorted({float(s) for s in args.seconds.split(",")}) if args.seconds else None
        if not args.objectives or max(args.steps) < 1:
            p.error("--objectives needs at least one objective and a step > 0 in --steps")
        from unpaired.errors import UnpairedError
        from unpaired.loading import get_registry

        try:
            for name in args.objectives:
                get_registry().entry("objective", name, "objective.name")
        except UnpairedError as exc:
            p.error(str(exc))
        return compare_objectives(args, argv)

    from unpaired.engine.build import build_dataset
    from unpaired.evaluation.evaluate import Evaluator
    from unpaired.loading import register_plugin, unregister_plugin
    from unpaired.engine.trainer import Trainer

    with tempfile.TemporaryDirectory() as tmp:
        cfg = recipe(args, Path(tmp) / "run")
        test = build_dataset(cfg, test=True)  # aligned pairs: synthetic's test split says paired = True
        device = torch.device(args.device)
        evaluator = Evaluator(test, extractor="tiny", max_images=args.test_n, batch_size=16, device=device)
        identity = Translators({"a2b": nn.Identity(), "b2a": nn.Identity()}, {"a2b": "identity", "b2a": "identity"})
        rows = [("identity (do nothing)", evaluator(identity), "")]
        # knows the target palette: every pixel the test B images' mean colour
        colour = Translators({"a2b": MeanColour(test, "B"), "b2a": MeanColour(test, "A")}, {"a2b": "mean", "b2a": "mean"})
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
