"""Inference benchmark: images/s of `unpaired translate` at 256 px (ResNet, 9 blocks), side by
side in one run with a reference-style loop (one image at a time: PIL -> ToTensor ->
Normalize -> G -> PNG), alternating rounds.

    python bench/translate.py [--images 16] [--rounds 3] [--device cpu|cuda]
"""
import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image


def make_images(folder, n, size=256, seed=0):
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True)
    for i in range(n):
        low = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
        Image.fromarray(low).resize((size, size), Image.BICUBIC).save(folder / f"{i:03d}.jpg", quality=90)


def make_checkpoint(root, device):
    """A full-size generator checkpoint (weights untrained: speed does not depend on them)."""
    from unpaired.recipe.config import load_recipe
    from unpaired.engine.trainer import Trainer

    for d in ("trainA", "trainB"):
        make_images(root / "data" / d, 2)
    cfg = load_recipe(Path(__file__).parents[1] / "recipes" / "forest_abstract.yaml",
                      [f"data.params.root={root / 'data'}", "data.test_params=null", f"out_dir={root / 'run'}",
                       f"train.device={device}", "data.num_workers=0"])
    return Trainer(cfg).save_checkpoint()


def ours(ckpt, inputs, out, device, batch_size, precision="fp32"):
    from unpaired.inference.translate import Translator, plan_jobs, translate_files

    t = Translator.from_checkpoint(ckpt, device=device, precision=precision, batch_size=batch_size)
    translate_files(t, plan_jobs([str(inputs)], out))


def reference_loop(ckpt, inputs, out, device):
    import torchvision.transforms as T
    from torchvision.utils import save_image

    from unpaired.engine.restore import load_generators

    nets, _ = load_generators(ckpt, directions=("a2b",))
    g = nets.g_ab.to(device).eval()
    tf = T.Compose([T.ToTensor(), T.Normalize((0.5,) * 3, (0.5,) * 3)])
    out.mkdir(parents=True, exist_ok=True)
    with torch.no_grad():
        for path in sorted(inputs.iterdir()):
            x = tf(Image.open(path).convert("RGB")).unsqueeze(0).to(device)
            save_image((g(x) + 1) / 2, out / (path.stem + ".png"))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=16)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        inputs = tmp / "inputs"
        make_images(inputs, args.images, seed=1)
        ckpt = make_checkpoint(tmp, args.device)
        variants = {
            "reference loop (batch 1, fp32)": lambda out: reference_loop(ckpt, inputs, out, args.device),
            "ours (batch 1, fp32)": lambda out: ours(ckpt, inputs, out, args.device, 1),
            "ours (batch 8, fp32)": lambda out: ours(ckpt, inputs, out, args.device, 8),
            "ours (batch 8, bf16)": lambda out: ours(ckpt, inputs, out, args.device, 8, "bf16"),
        }
        times = {k: [] for k in variants}
        for r in range(args.rounds + 1):  # round 0 warms up
            for i, (name, fn) in enumerate(variants.items()):
                t0 = time.perf_counter()
                fn(tmp / f"out_{r}_{i}")
                if args.device == "cuda":
                    torch.cuda.synchronize()
                if r:
                    times[name].append(time.perf_counter() - t0)
        base = statistics.median(times["reference loop (batch 1, fp32)"])
        print(f"{args.images} JPEGs of 256x256 -> PNG, resnet 9 blocks, {args.device}, "
              f"{torch.get_num_threads()} threads, median of {args.rounds} alternating rounds")
        print("| variant | img/s | vs reference loop |\n|---|---|---|")
        for name, ts in times.items():
            m = statistics.median(ts)
            print(f"| {name} | {args.images / m:.2f} | {base / m:.2f}x |")


if __name__ == "__main__":
    main()
