"""The preview's upsampling, side by side: transposed convolutions (``deconv``, the reference's)
against ``resize_conv`` (x2 nearest resize then a 3x3 convolution), on the shipped forest ->
abstract data with the recipe's ``--quick`` settings, from the same seeds.

For each (upsample, seed) the preview trains in a subprocess (``unpaired run ... --quick``, the
defaults of a user's first command), then:

* **checkerboard**: the share of each translated test image's spectral energy (luminance, DC
  removed) at the period-2 frequencies that stride-2 transposed convolutions imprint (within
  ``BAND`` cycles/px of 0.5 on either axis), averaged over the test images of both directions;
  the same for the input photos and paintings as the reference (natural images have little there);
* **quality**: ``unpaired eval --extractor tiny`` (KID of each direction against the real target
  test images, offline, comparable within this table only) and the cycle L1;
* the wall time of the training.

    python bench/checkerboard.py                              # seeds 0, 1; 1,000 steps (the preview)
    python bench/checkerboard.py --seeds 0 --steps 200        # a quick look
"""
import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "recipes" / "forest_abstract.yaml"
DATA = ROOT / "data" / "forest_abstract"
UPSAMPLES = ("deconv", "resize_conv")
BAND = 0.05  # cycles per pixel around the Nyquist frequency 0.5


def nyquist_share(img):
    """Share of a PIL image's non-DC spectral energy (luminance) within BAND of 0.5 cycles/px
    on either axis: where a stride-2 upsampling's checkerboard lives."""
    from unpaired.data.tensors import to_tensor

    y = to_tensor(img.convert("L"), 1)[0].double()
    y = y - y.mean()
    power = torch.fft.fft2(y).abs() ** 2
    fy = torch.fft.fftfreq(y.shape[0]).abs()[:, None].expand_as(power)
    fx = torch.fft.fftfreq(y.shape[1]).abs()[None, :].expand_as(power)
    band = (fy >= 0.5 - BAND) | (fx >= 0.5 - BAND)
    return float(power[band].sum() / power.sum().clamp_min(1e-12))


def test_images():
    from unpaired.data.images import find_images

    return {"a2b": find_images(DATA / "testA"), "b2a": find_images(DATA / "testB")}


def checkerboard(run_dir, images):
    from PIL import Image

    from unpaired.inference.translate import Translator

    shares = []
    for direction, files in images.items():
        t = Translator.from_checkpoint(run_dir, direction=direction, device="cpu")
        shares += [nyquist_share(t(Image.open(f))) for f in files]
    return statistics.mean(shares)


def evaluate(run_dir, step=None, extractor="tiny", raw=False):
    """``unpaired eval`` of a run (its latest checkpoint, or kept ``step``) as a user runs it, from
    the repository root (the recipe's data path is relative); its metrics. A score already in the
    run's folder (an earlier invocation's) is read, not made again."""
    out = Path(run_dir) / f"eval_{step or 'latest'}_{extractor}{'_raw' if raw else ''}"
    if not (out / "metrics.json").exists():
        subprocess.run([sys.executable, "-m", "unpaired", "eval", str(run_dir), "--extractor", extractor, "--device",
                        "cpu", "--out", str(out), *(["--step", str(step)] if step else []),
                        *(["--raw"] if raw else [])], check=True, capture_output=True, text=True, cwd=ROOT)
    return json.loads((out / "metrics.json").read_text())["metrics"]


def _timed(cmd):
    start = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=ROOT)
    return time.perf_counter() - start


def train(out_dir, seed, steps, *overrides):
    """The preview (``--quick``) of the forest -> abstract recipe with ``overrides``, in a
    subprocess as a user runs it; returns its wall time in seconds."""
    return _timed([sys.executable, "-m", "unpaired", "run", str(RECIPE), "--quick", f"out_dir={out_dir}",
                   f"train.seed={seed}", f"train.max_steps={steps}", "disable_plugins=[progress]", *overrides])


def resume(out_dir, steps):
    """Continue a run of :func:`train` to ``steps`` (resume is exact: the same as a run that
    long); returns the wall time of the continuation in seconds."""
    return _timed([sys.executable, "-m", "unpaired", "run", str(Path(out_dir) / "config.yaml"), "--resume",
                   f"train.max_steps={steps}"])


def precision_auto():
    from unpaired.runtime.devices import autocast_dtype, precision_name

    return precision_name(autocast_dtype("auto", torch.device("cpu")))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--keep", default=None, help="keep the runs in this folder (default: a temporary one)")
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    images = test_images()
    from PIL import Image

    inputs = statistics.mean(nyquist_share(Image.open(f)) for files in images.values() for f in files)
    base = Path(args.keep or tempfile.mkdtemp(prefix="checkerboard_"))
    rows = {u: [] for u in UPSAMPLES}
    for seed in seeds:
        for upsample in UPSAMPLES:  # interleaved: a change in the machine's load hits both alike
            run = base / f"{upsample}_seed{seed}"
            seconds = train(run, seed, args.steps, f"generator.params.upsample={upsample}")
            scores = evaluate(run)
            row = {"seconds": seconds, "checker": checkerboard(run, images), "kid_a2b": scores["kid_a2b"],
                   "kid_b2a": scores["kid_b2a"], "cycle_l1_a": scores["cycle_l1_a"], "cycle_l1_b": scores["cycle_l1_b"]}
            rows[upsample].append(row)
            print(f"{upsample} seed {seed}: " + ", ".join(f"{k} {v:.4g}" for k, v in row.items()), flush=True)
    from quality import machine  # bench/ is on sys.path when run as a script

    print(f"\n{args.steps} steps, seeds {args.seeds}; {machine()}; precision auto ({precision_auto()}); "
          f"checkerboard share of the input images: {inputs:.5f}\n")
    print("| upsample | training (s) | checkerboard share | KID a2b | KID b2a | cycle L1 A | cycle L1 B |")
    print("|---|---|---|---|---|---|---|")
    for upsample, got in rows.items():
        mean = {k: statistics.mean(r[k] for r in got) for k in got[0]}
        print(f"| {upsample} | {mean['seconds']:.0f} | {mean['checker']:.5f} | {mean['kid_a2b']:.4f} | "
              f"{mean['kid_b2a']:.4f} | {mean['cycle_l1_a']:.4f} | {mean['cycle_l1_b']:.4f} |")
    d, r = (statistics.mean(x["checker"] for x in rows[u]) for u in UPSAMPLES)
    print(f"\ncheckerboard share: resize_conv / deconv = {r / d:.3f}")


if __name__ == "__main__":
    main()
