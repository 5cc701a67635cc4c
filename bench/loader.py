"""Data-loader benchmark: the standard 286 -> 256 training pipeline (bicubic resize to
286x286, random 256 crop, random horizontal flip, tensor in [-1, 1]) through our
``image_folder`` plugin and ``unpaired.data.make_loader``, against the plain PIL +
torchvision pipeline of the reference in a plain DataLoader, both on 2 workers, batch 1,
side by side in one run with alternating repetitions.

Two source sets are generated in a temporary folder (JPEG quality 90, smooth noise plus
gradients, so they compress like photographs): 256x256 images and large photos
(--large-size, 1600x1200 by default); --count images of each, split between trainA and
trainB. Each item of either pipeline is an unpaired pair (A[i], random B), so one item is
two decoded images; throughput is reported as images/s (= 2 x pairs/s).

    python bench/loader.py
    python bench/loader.py --count 200 --items 400 --repeats 3 --out DIR
"""
import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from PIL import Image

TARGETS = {"256px": 300.0, "large": 100.0}  # images/s on the 2-core development machine


# -- test images -------------------------------------------------------------------------
def smooth_image(rng, w, h):
    """Photo-like content: a few octaves of bicubically upsampled noise plus a gradient."""
    g = torch.Generator().manual_seed(rng.randrange(2**31))
    img = torch.zeros(3, h, w)
    for cells, amp in ((4, 0.5), (16, 0.3), (64, 0.15), (256, 0.05)):
        cw, ch = max(2, w * cells // 1024), max(2, h * cells // 1024)
        noise = torch.rand(1, 3, ch, cw, generator=g)
        img += amp * torch.nn.functional.interpolate(noise, size=(h, w), mode="bicubic", align_corners=False)[0]
    ramp = torch.linspace(0, 1, w).view(1, 1, w) * torch.rand(3, 1, 1, generator=g)
    img = (img * 0.8 + ramp * 0.4).clamp(0, 1)
    return Image.fromarray((img * 255).round().to(torch.uint8).permute(1, 2, 0).numpy())


def make_set(root, count, w, h, seed):
    rng = random.Random(seed)
    for domain in ("trainA", "trainB"):
        (root / domain).mkdir(parents=True, exist_ok=True)
    for i in range(count):
        domain = "trainA" if i % 2 == 0 else "trainB"
        smooth_image(rng, w, h).save(root / domain / f"{i:04d}.jpg", quality=90)
    return root


# -- the reference's pipeline --------------------------------------------------------------
class ReferenceUnaligned(torch.utils.data.Dataset):
    """Plain PIL + torchvision transforms, unaligned A/B as the reference loads them."""

    def __init__(self, root, load_size=286, crop_size=256):
        from torchvision import transforms

        exts = (".jpg", ".jpeg", ".png")
        self.a = sorted(p for p in (Path(root) / "trainA").iterdir() if p.suffix.lower() in exts)
        self.b = sorted(p for p in (Path(root) / "trainB").iterdir() if p.suffix.lower() in exts)
        self.transform = transforms.Compose([
            transforms.Resize([load_size, load_size], transforms.InterpolationMode.BICUBIC),
            transforms.RandomCrop(crop_size),
            transforms.RandomHorizontalFlip(),
            transforms.ToTensor(),
            transforms.Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),
        ])

    def __len__(self):
        return max(len(self.a), len(self.b))

    def __getitem__(self, i):
        a = Image.open(self.a[i % len(self.a)]).convert("RGB")
        b = Image.open(self.b[random.randint(0, len(self.b) - 1)]).convert("RGB")
        return {"A": self.transform(a), "B": self.transform(b)}


def reference_loader(root, items, workers):
    ds = ReferenceUnaligned(root)
    sampler = torch.utils.data.RandomSampler(ds, replacement=True, num_samples=items)
    return torch.utils.data.DataLoader(ds, batch_size=1, sampler=sampler, num_workers=workers)


def ours_loader(ds, items, workers):
    from unpaired.data import make_loader

    return make_loader(ds, 1, seed=0, start=0, stop=items, num_workers=workers)


def ours_dataset(root):
    import unpaired

    return unpaired.get_registry().create("dataset", "image_folder", root=str(root), load_size=286, crop_size=256)


# -- measuring -----------------------------------------------------------------------------
def worker_hwm_mib(it):
    """Largest VmHWM among the loader's worker processes (reads /proc; None if unavailable)."""
    peaks = []
    for w in getattr(it, "_workers", []):
        try:
            for line in Path(f"/proc/{w.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peaks.append(int(line.split()[1]) / 1024)
        except OSError:
            pass
    return max(peaks) if peaks else None


def run_once(loader, skip):
    """Images/s after the first ``skip`` pairs (worker start-up and prefetch excluded)."""
    it = iter(loader)
    n, t0, hwm = 0, None, None
    for i, batch in enumerate(it):
        if i % 50 == 25:  # the workers are gone once the loader is exhausted: read them now
            hwm = max(filter(None, (hwm, worker_hwm_mib(it))), default=None)
        assert batch["A"].shape[-2:] == (256, 256) and batch["B"].shape[-2:] == (256, 256)
        if i == skip - 1:
            t0 = time.perf_counter()
        elif i >= skip:
            n += 1
    dt = time.perf_counter() - t0
    del it
    return 2 * n / dt, hwm


def check_range(loader):
    batch = next(iter(loader))
    return float(batch["A"].min()), float(batch["A"].max())


def machine():
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), "unknown CPU")
    import PIL
    import torchvision

    return {"cpu": cpu, "cores": os.cpu_count(), "torch": torch.__version__, "torchvision": torchvision.__version__,
            "pillow": PIL.__version__, "loadavg_start": Path("/proc/loadavg").read_text().split()[:3]}


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    p.add_argument("--count", type=int, default=200, help="images per source set (half A, half B)")
    p.add_argument("--items", type=int, default=300, help="pairs per measurement")
    p.add_argument("--skip", type=int, default=10, help="pairs before the clock starts")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--large-size", default="1600x1200", help="WxH of the large JPEGs")
    p.add_argument("--out", default=None)
    args = p.parse_args()
    lw, lh = (int(x) for x in args.large_size.split("x"))
    info = machine()
    info["command"] = " ".join(["python", "bench/loader.py"] + sys.argv[1:])
    print(f"{info['cpu']}, {info['cores']} cores, torch {info['torch']}, torchvision {info['torchvision']}, "
          f"Pillow {info['pillow']}; load average {' '.join(info['loadavg_start'])}")
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        sets = {}
        t0 = time.perf_counter()
        sets["256px"] = make_set(Path(tmp) / "small", args.count, 256, 256, seed=1)
        sets["large"] = make_set(Path(tmp) / "large", args.count, lw, lh, seed=2)
        sizes = {k: sum(f.stat().st_size for f in v.rglob("*.jpg")) / args.count / 1024 for k, v in sets.items()}
        print(f"generated {args.count} JPEGs of 256x256 ({sizes['256px']:.0f} KiB each) and of {lw}x{lh} "
              f"({sizes['large']:.0f} KiB each) in {time.perf_counter() - t0:.1f} s")
        for name, root in sets.items():
            t0 = time.perf_counter()
            ds = ours_dataset(root)
            scan_s = time.perf_counter() - t0
            lo, hi = check_range(ours_loader(ds, 2, 0))
            print(f"[{name}] our dataset built (folder scan, every file checked) in {scan_s:.2f} s; "
                  f"values in [{lo:.2f}, {hi:.2f}]")
            runs = {"ours": [], "reference": []}
            hwm = {"ours": [], "reference": []}
            for r in range(args.repeats):
                order = ["ours", "reference"] if r % 2 == 0 else ["reference", "ours"]
                for which in order:
                    loader = (ours_loader(ds, args.items, args.workers) if which == "ours"
                              else reference_loader(root, args.items, args.workers))
                    ips, peak = run_once(loader, args.skip)
                    runs[which].append(ips)
                    hwm[which].append(peak)
                    print(f"  round {r + 1}: {which:9s} {ips:7.1f} img/s", flush=True)
            med = {k: statistics.median(v) for k, v in runs.items()}
            per_round = statistics.median(o / f for o, f in zip(runs["ours"], runs["reference"]))
            results.append({"source": name, "size": "256x256" if name == "256px" else f"{lw}x{lh}",
                            "ours_img_s": med["ours"], "reference_img_s": med["reference"],
                            "ratio": med["ours"] / med["reference"], "median_round_ratio": per_round,
                            "ours_runs": runs["ours"], "reference_runs": runs["reference"],
                            "ours_worker_hwm_mib": max(x for x in hwm["ours"] if x) if any(hwm["ours"]) else None,
                            "reference_worker_hwm_mib": max(x for x in hwm["reference"] if x) if any(hwm["reference"]) else None,
                            "dataset_build_s": scan_s, "target_img_s": TARGETS[name],
                            "target_met": med["ours"] >= TARGETS[name]})
    info["loadavg_end"] = Path("/proc/loadavg").read_text().split()[:3]
    lines = ["| source JPEGs | ours img/s | reference img/s | ours / reference (of medians; per-round median) "
             "| worker peak RSS MiB ours / ref | target | met |", "|---|---|---|---|---|---|---|"]
    for r in results:
        mem = "/".join(f"{x:.0f}" if x else "-" for x in (r["ours_worker_hwm_mib"], r["reference_worker_hwm_mib"]))
        lines.append(f"| {r['size']} | {r['ours_img_s']:.1f} | {r['reference_img_s']:.1f} | {r['ratio']:.2f}x; "
                     f"{r['median_round_ratio']:.2f}x | {mem} | >= {r['target_img_s']:.0f} | "
                     f"{'yes' if r['target_met'] else 'no'} |")
    md = "\n".join(lines)
    print(md)
    print(f"load average at the end: {' '.join(info['loadavg_end'])}")
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "loader.json").write_text(json.dumps({"machine": info, "args": vars(args), "results": results}, indent=1))
        (out / "loader.md").write_text(md + "\n")


if __name__ == "__main__":
    main()
