"""Large images: peak memory and time of whole-image vs tiled translation against image size,
each measured in its own subprocess (peak RSS from getrusage), and the seam error (tiled vs
whole-image output, on the largest size the whole-image pass did).

    python bench/tiling.py [--sizes 512 1024 2048 4096] [--tile 512] [--ngf 64 --blocks 9] [--device cpu]
    python bench/tiling.py --sizes 2048 4096 --tile 1024 --ngf 32 --blocks 6 --skip-whole-above 0 --keep-freed

Sizes are the longer side of 4:3 images. Run it on a quiet machine: it takes the CPU.
"""
import argparse
import json
import resource
import subprocess
import sys
import tempfile

import numpy as np
from PIL import Image

CHILD = r"""
import json, resource, sys, time
import numpy as np, torch
from PIL import Image
from unpaired import get_registry
from unpaired.inference.translate import Translator
from unpaired.inference.tiling import translate_tiled
from unpaired.runtime.devices import keep_freed_memory
side, tile, ngf, blocks, device, out, keep = sys.argv[1:8]
side, tile, ngf, blocks = int(side), int(tile), int(ngf), int(blocks)
if keep == "1":
    assert keep_freed_memory()
torch.manual_seed(0)
g = get_registry().create("generator", "resnet", in_channels=3, out_channels=3, ngf=ngf, n_blocks=blocks)
t = Translator(g, 3, 3, device=device, precision="fp32", tile=0)
rng = np.random.default_rng(0)
img = Image.fromarray(rng.integers(0, 256, (12, 16, 3), dtype=np.uint8)).resize((side, side * 3 // 4), Image.BICUBIC)
start = time.perf_counter()
faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
res = translate_tiled(t, img, tile) if tile else t(img)
secs = time.perf_counter() - start
faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults
if out != "-":
    res.save(out)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"seconds": secs, "peak_mib": peak, "faults": faults}))
"""


def measure(side, tile, args, out="-", keep=False):
    cmd = [sys.executable, "-c", CHILD, str(side), str(tile), str(args.ngf), str(args.blocks), args.device, out,
           "1" if keep else "0"]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode:
        return {"error": (done.stderr.strip().splitlines() or ["killed"])[-1]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", type=int, nargs="+", default=[512, 1024, 2048, 4096])
    p.add_argument("--tile", type=int, default=512)
    p.add_argument("--ngf", type=int, default=64)
    p.add_argument("--blocks", type=int, default=9)
    p.add_argument("--device", default="cpu")
    p.add_argument("--skip-whole-above", type=int, default=4096, help="no whole-image pass above this side")
    p.add_argument("--keep-freed", action="store_true",
                   help="also the tiled pass with devices.keep_freed_memory() (what `unpaired translate` does on "
                        "the CPU), side by side with plain malloc")
    args = p.parse_args()
    print(f"resnet ngf {args.ngf}, {args.blocks} blocks, {args.device}, tile {args.tile}")
    print(f"{'size':>11} | {'whole s':>8} {'whole MiB':>9} | {'tiled s':>8} {'tiled MiB':>9} {'faults':>9}"
          + (f" | {'kept s':>8} {'kept MiB':>9} {'faults':>9} {'speed-up':>8}" if args.keep_freed else ""))
    seam_side = None
    with tempfile.TemporaryDirectory() as tmp:
        for side in args.sizes:
            whole = measure(side, 0, args, f"{tmp}/whole_{side}.png") if side <= args.skip_whole_above else {}
            tiled = measure(side, args.tile, args, f"{tmp}/tiled_{side}.png")
            kept = measure(side, args.tile, args, keep=True) if args.keep_freed else None
            if "seconds" in whole and "seconds" in tiled:
                seam_side = side

            def cell(r, key):
                return f"{r[key]:.1f}" if key in r else r.get("error", "-")[:9]
            line = (f"{side}x{side * 3 // 4:<6} | {cell(whole, 'seconds'):>8} {cell(whole, 'peak_mib'):>9} | "
                    f"{cell(tiled, 'seconds'):>8} {cell(tiled, 'peak_mib'):>9} {tiled.get('faults', '-'):>9}")
            if kept is not None:
                ratio = f"{tiled['seconds'] / kept['seconds']:.2f}x" if "seconds" in tiled and "seconds" in kept else "-"
                line += (f" | {cell(kept, 'seconds'):>8} {cell(kept, 'peak_mib'):>9} {kept.get('faults', '-'):>9} "
                         f"{ratio:>8}")
            print(line, flush=True)
        if seam_side:
            a = np.asarray(Image.open(f"{tmp}/whole_{seam_side}.png")).astype(float)
            b = np.asarray(Image.open(f"{tmp}/tiled_{seam_side}.png")).astype(float)
            d = np.abs(a - b)
            print(f"seam error at {seam_side} px (tiled vs whole, 8-bit levels): mean {d.mean():.2f}, "
                  f"99th percentile {np.percentile(d, 99):.1f}, max {d.max():.0f}")
    print(f"(this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB)")


if __name__ == "__main__":
    main()
