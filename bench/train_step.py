"""Training-step benchmark: our step (recipe -> Trainer.train_step) against the
reference-equivalent step of bench/reference_step.py, side by side in one run.

Every variant gets the same inputs; after a warm-up the variants take turns, one step
each per round (the order rotates every round), so a noisy, shared machine slows them
alike. Reported: median s/iter, img/s, CPU seconds per iteration (CPU), the speed-up
over the first variant (ratio of medians, and the median of per-round ratios), and peak
memory: on the CPU the peak RSS of a separate process that builds the variant and runs
two steps (above the bare process with torch imported); on CUDA the peak of
torch.cuda.max_memory_allocated during the variant's warm-up, above what was allocated
before it was built.

Variants (``--variants``, comma-separated): ``reference`` or ``ours`` followed by any of
  +unfused   objective.params.fuse_passes=false (the engine's 6 generator calls; the engine fuses by
             default since 2026-11-26 15:14 when the generator has per-sample norms)
  +fused     4 generator calls instead of 6, done by the bench itself: G_AB(cat[a, b]) gives fake_b and the identity
             G_AB(b), G_BA(cat[b, a]) gives fake_a and G_BA(a); each discriminator sees real
             and pooled fake in one call in its step. Identical maths with instance norm.
             Written here in the bench from the engine's networks; the engine is untouched.
  +cl        channels_last networks and inputs
  +bf16      train.precision=bf16 (autocast; on the CPU too)
  +auto      train.precision=auto, the recipe's default (bf16 on a GPU and on a CPU with native
             bf16, fp32 elsewhere; the table's notes say what it resolved to). Without +bf16 or
             +auto, `ours` is fp32.
  +t1        torch.set_num_threads(1) during the step
  +nomkldnn  torch.backends.mkldnn disabled during the step
  +compile   train.compile=true when the schema has that key, else torch.compile on the
             four networks (done here)
  +bN        batch size N instead of --batch
  +cut, +fastcut  objective.name=cut / fastcut instead of the recipe's cyclegan (ours only)

    python bench/train_step.py --size 128 --blocks 6 --batch 1 --device cpu --repeats 7
    python bench/train_step.py --variants reference,ours+auto,ours+bf16,ours --repeats 7   # the default vs the reference
    python bench/train_step.py --variants reference,ours,ours+fused,ours+cl --repeats 3
    python bench/train_step.py --variants ours,ours+cut,ours+fastcut --repeats 7   (objectives)
    python bench/train_step.py --gpu-suite --out bench_results/gpu
"""
import argparse
import contextlib
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from reference_step import ReferenceStep  # noqa: E402

RECIPE = ROOT / "recipes" / "forest_abstract.yaml"
H100_BF16_DENSE = 989e12  # FLOP/s, H100 SXM dense bf16 (the brief's assumption)


# -- the machine ---------------------------------------------------------------------------
def machine(device):
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info = {"cpu": cpu, "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "torch": torch.__version__, "python": platform.python_version(),
            "cpu_capability": torch.backends.cpu.get_cpu_capability()}
    try:
        info["loadavg_start"] = Path("/proc/loadavg").read_text().split()[:3]
    except OSError:
        pass
    if torch.device(device).type == "cuda":
        info["gpu"] = torch.cuda.get_device_name()
        info["cuda"] = torch.version.cuda
    return info


def busy_seconds():
    """CPU seconds all processes spent busy so far (/proc/stat), to tell how much of a step's
    time other processes took on this shared machine (None where /proc/stat is missing)."""
    try:
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
    except OSError:
        return None
    return (v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / os.sysconf("SC_CLK_TCK")  # not idle, iowait


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# -- a tiny data folder, because the Trainer builds its datasets -------------------------
def tiny_data(root):
    from PIL import Image

    g = torch.Generator().manual_seed(0)
    for split in ("trainA", "trainB", "testA", "testB"):
        (root / split).mkdir(parents=True, exist_ok=True)
        for i in range(16):  # enough for batches up to 16
            px = (torch.rand(40, 40, 3, generator=g) * 255).to(torch.uint8).numpy()
            Image.fromarray(px).save(root / split / f"{i}.png")
    return root


def has_key(cfg, key):
    from omegaconf import OmegaConf

    sentinel = object()
    return OmegaConf.select(cfg, key, default=sentinel) is not sentinel


# -- variants ------------------------------------------------------------------------------
def parse_variant(spec, batch):
    base, *mods = spec.split("+")
    if base not in ("reference", "ours"):
        raise SystemExit(f"variant {spec!r}: must start with reference or ours")
    opts = {"base": base, "fused": False, "unfused": False, "cl": False, "bf16": False, "auto": False, "t1": False,
            "nomkldnn": False, "compile": False, "cut": False, "fastcut": False, "batch": batch}
    for m in mods:
        if m.startswith("b") and m[1:].isdigit():
            opts["batch"] = int(m[1:])
        elif m in opts and m not in ("base", "batch"):
            opts[m] = True
        else:
            raise SystemExit(f"variant {spec!r}: unknown modifier {m!r}")
    if opts["fused"] and (opts["cut"] or opts["fastcut"]):
        raise SystemExit(f"variant {spec!r}: +fused is the bench's own CycleGAN step")
    if opts["bf16"] and opts["auto"]:
        raise SystemExit(f"variant {spec!r}: +bf16 or +auto, not both")
    if base == "reference" and any(opts[k] for k in ("fused", "unfused", "bf16", "auto", "compile", "cut", "fastcut")):
        raise SystemExit(f"variant {spec!r}: the reference runs eager fp32 only (+cl/+t1/+nomkldnn allowed)")
    return opts


class Variant:
    """One way of running a training step, with its own networks, optimisers and pools."""

    def __init__(self, spec, args, device, workdir):
        self.spec, self.device = spec, device
        self.o = parse_variant(spec, args.batch)
        self.notes = []
        if self.o["base"] == "reference":
            self.ref = ReferenceStep(args.size, args.blocks, device, gan=args.gan)
            nets = [self.ref.g_ab, self.ref.g_ba, self.ref.d_a, self.ref.d_b]
        else:
            self.trainer = self._trainer(args, device, workdir)
            nets = list(self.trainer.model.networks().values())
        if self.o["cl"]:
            for n in nets:
                n.to(memory_format=torch.channels_last)

    def _trainer(self, args, device, workdir):
        from unpaired.recipe.config import load_recipe
        from unpaired.engine.trainer import Trainer

        data = tiny_data(Path(workdir) / "data")
        out = Path(tempfile.mkdtemp(dir=workdir, prefix="run_"))
        overrides = [
            f"data.params.root={data}", f"data.params.load_size={args.size}",
            f"data.params.crop_size={args.size}", f"data.batch_size={self.o['batch']}",
            f"generator.params.n_blocks={args.blocks}", f"losses.adversarial.name={args.gan}",
            f"train.device={device}",
            f"train.precision={'bf16' if self.o['bf16'] else 'auto' if self.o['auto'] else 'fp32'}",
            f"out_dir={out}",
        ]
        cfg = load_recipe(RECIPE, [])
        if self.o["compile"]:
            overrides.append("train.compile=true")
        for objective in ("cut", "fastcut"):
            if self.o[objective]:
                overrides.append(f"objective.name={objective}")
                if args.blocks < 5:  # CUT's layers name the 5th block
                    overrides.append(f"objective.params.nce_layers=[input, down1, down2, block1, block{args.blocks}]")
        if self.o["unfused"]:
            overrides.append("objective.params.fuse_passes=false")
        cfg = load_recipe(RECIPE, overrides)
        self.overrides = overrides
        trainer = Trainer(cfg)
        if self.o["auto"]:
            name = {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[trainer.amp_dtype]
            self.notes.append(f"train.precision=auto resolved to {name}")
        return trainer

    def inputs(self, a, b):
        n = self.o["batch"]
        a, b = a[:n], b[:n]
        if self.o["cl"]:
            a, b = (x.contiguous(memory_format=torch.channels_last) for x in (a, b))
        return a, b

    def step(self, a, b):
        with contextlib.ExitStack() as stack:
            if self.o["nomkldnn"]:
                stack.enter_context(torch.backends.mkldnn.flags(enabled=False))
            if self.o["t1"]:
                before = torch.get_num_threads()
                torch.set_num_threads(1)
                stack.callback(torch.set_num_threads, before)
            if self.o["base"] == "reference":
                return self.ref.step(a, b)
            if self.o["fused"]:
                return fused_step(self.trainer, a, b)
            return self.trainer.train_step(a, b)


def fused_step(tr, a, b):
    """Trainer.train_step with 4 generator calls and one call per discriminator in the D step."""
    from unpaired.engine.objective import set_requires_grad

    m, n = tr.model, a.shape[0]
    discriminators = [m.d_a, m.d_b]
    autocast = (torch.autocast(tr.device.type, dtype=tr.amp_dtype) if tr.amp_dtype else contextlib.nullcontext())
    with autocast:
        set_requires_grad(discriminators, False)
        fake_b, idt_b = m.g_ab(torch.cat([a, b])).split(n)  # G_AB(a), G_AB(b)
        fake_a, idt_a = m.g_ba(torch.cat([b, a])).split(n)  # G_BA(b), G_BA(a)
        rec_a, rec_b = m.g_ba(fake_b), m.g_ab(fake_a)
        adv = m.adversarial
        terms = {
            "g_adv_ab": m.w_adv * adv.generator_loss(m.d_b(fake_b)),
            "g_adv_ba": m.w_adv * adv.generator_loss(m.d_a(fake_a)),
            "cycle_a": m.w_cycle * m.cycle(rec_a, a),
            "cycle_b": m.w_cycle * m.cycle(rec_b, b),
            "idt_a": m.w_identity * m.identity(idt_a, a),
            "idt_b": m.w_identity * m.identity(idt_b, b),
        }
        set_requires_grad(discriminators, True)
        loss_g = sum(terms.values())
    tr.optimizers["g"].zero_grad(set_to_none=True)
    loss_g.backward()
    tr.optimizers["g"].step()
    pa, pb = m.pool_a.query(fake_a), m.pool_b.query(fake_b)
    with autocast:
        ra, fa = m.d_a(torch.cat([a, pa.to(a.dtype)])).split(n)
        rb, fb = m.d_b(torch.cat([b, pb.to(b.dtype)])).split(n)
        d_terms = {"d_a": adv.discriminator_loss(ra, fa), "d_b": adv.discriminator_loss(rb, fb)}
        loss_d = d_terms["d_a"] + d_terms["d_b"]
    tr.optimizers["d"].zero_grad(set_to_none=True)
    loss_d.backward()
    tr.optimizers["d"].step()
    return {**terms, "g_total": loss_g, **d_terms}


def make_inputs(batch, size, device):
    g = torch.Generator().manual_seed(1234)
    a = torch.rand(batch, 3, size, size, generator=g) * 2 - 1
    b = torch.rand(batch, 3, size, size, generator=g) * 2 - 1
    return a.to(device), b.to(device)


# -- measuring -----------------------------------------------------------------------------
def proc_status_kib(field):
    """VmRSS / VmHWM of this process in KiB. (ru_maxrss is not used: Linux carries the
    parent's high-water mark across exec, so a child would report the parent's peak.)"""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def child_memory(args, spec):
    """(CPU) peak RSS of building `spec` and running 2 steps, in this fresh process."""
    device = torch.device(args.device)
    a, b = make_inputs(parse_variant(spec, args.batch)["batch"], args.size, device)
    base = proc_status_kib("VmRSS")
    with tempfile.TemporaryDirectory() as work:
        v = Variant(spec, args, device, work)
        ai, bi = v.inputs(a, b)
        for _ in range(2):
            v.step(ai, bi)
        peak = proc_status_kib("VmHWM")
    print(json.dumps({"spec": spec, "peak_rss_mib": (peak - base) / 1024}))


def measure_cpu_memory(args, specs):
    out = {}
    for spec in specs:
        cmd = [sys.executable, __file__, "--_child-memory", spec, "--size", str(args.size),
               "--blocks", str(args.blocks), "--batch", str(args.batch), "--device", args.device,
               "--gan", args.gan]
        r = subprocess.run(cmd, capture_output=True, text=True)
        try:
            out[spec] = json.loads(r.stdout.strip().splitlines()[-1])["peak_rss_mib"]
        except (IndexError, ValueError, KeyError):
            print(f"memory child for {spec} failed:\n{r.stderr[-2000:]}", file=sys.stderr)
            out[spec] = None
    return out


def count_flops(variant, a, b):
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        variant.step(a, b)
    return counter.get_total_flops()


def bench(specs, args, device, workdir, log=print, deadline=None):
    """Build each variant, warm it up (and note its CUDA peak), then alternate rounds."""
    a, b = make_inputs(max(parse_variant(s, args.batch)["batch"] for s in specs), args.size, device)
    variants, ins, mem = [], [], {}
    for spec in specs:
        if device.type == "cuda":
            torch.cuda.empty_cache()
            sync(device)
            before = torch.cuda.memory_allocated(device)
            torch.cuda.reset_peak_memory_stats(device)
        t0 = time.perf_counter()
        v = Variant(spec, args, device, workdir)
        ai, bi = v.inputs(a, b)
        for _ in range(args.warmup):
            v.step(ai, bi)
        sync(device)
        if device.type == "cuda":
            mem[spec] = (torch.cuda.max_memory_allocated(device) - before) / 2**20
        log(f"  built and warmed {spec} ({args.warmup} steps, {time.perf_counter() - t0:.1f} s)"
            + ("; " + "; ".join(v.notes) if v.notes else ""))
        variants.append(v)
        ins.append((ai, bi))
    times = {s: [] for s in specs}
    cpu_times = {s: [] for s in specs}
    foreign = {s: [] for s in specs}  # share of the cores other processes used during the step
    rounds = 0
    for r in range(args.repeats):
        if deadline is not None and r >= 2 and time.perf_counter() > deadline:
            log(f"  time budget reached after {r} rounds")
            break
        order = list(range(len(specs)))
        k = r % len(order)
        order = order[k:] + order[:k]
        for i in order:
            v, (ai, bi) = variants[i], ins[i]
            sync(device)
            c0, b0, t0 = time.process_time(), busy_seconds(), time.perf_counter()
            for _ in range(args.steps_per_round):
                v.step(ai, bi)
            sync(device)
            dt, own = time.perf_counter() - t0, time.process_time() - c0
            times[specs[i]].append(dt / args.steps_per_round)
            cpu_times[specs[i]].append(own / args.steps_per_round)
            if b0 is not None:
                foreign[specs[i]].append(max(0.0, (busy_seconds() - b0 - own) / (dt * os.cpu_count())))
        rounds += 1
        log(f"  round {r + 1}/{args.repeats}: " + ", ".join(
            f"{s} {times[s][-1]:.3f}s" + (f" (others {100 * foreign[s][-1]:.0f}%)" if foreign[s] else "") for s in specs))
    # rounds in which other processes took under 10% of the cores during every variant's step
    quiet = [i for i in range(rounds) if all(foreign[s] and foreign[s][i] < 0.10 for s in specs)]
    results = []
    base = specs[0]
    for spec, v in zip(specs, variants):
        med = statistics.median(times[spec])
        per_round = [times[base][i] / times[spec][i] for i in range(rounds)]
        results.append({
            "variant": spec, "batch": v.o["batch"], "median_s_per_iter": med,
            "min_s_per_iter": min(times[spec]), "max_s_per_iter": max(times[spec]),
            "img_per_s": v.o["batch"] / med,
            "cpu_s_per_iter": statistics.median(cpu_times[spec]) if device.type == "cpu" else None,
            # speed-up in images per second over the first variant
            "speedup_vs_first": (v.o["batch"] / med) / (variants[0].o["batch"] / statistics.median(times[base])),
            "median_round_ratio": statistics.median(per_round) * v.o["batch"] / variants[0].o["batch"],
            "peak_mem_mib": mem.get(spec), "rounds": rounds, "times": times[spec], "notes": v.notes,
            "foreign_load": foreign[spec], "quiet_rounds": len(quiet),
            "quiet_median_s_per_iter": statistics.median(times[spec][i] for i in quiet) if quiet else None,
            "quiet_round_ratio": (statistics.median(times[base][i] / times[spec][i] for i in quiet)
                                  * v.o["batch"] / variants[0].o["batch"]) if quiet else None,
        })
    return results, variants, (a, b)


def table(results, mem_label):
    cpu = results[0].get("cpu_s_per_iter") is not None
    lines = [f"| variant | batch | median s/iter | img/s | speed-up vs {results[0]['variant']} "
             f"(ratio of medians; median per-round ratio) |"
             + (" quiet rounds | quiet median s/iter | quiet speed-up | CPU s/iter |" if cpu else "")
             + f" {mem_label} |", "|---|---|---|---|---|" + ("---|---|---|---|" if cpu else "") + "---|"]
    for r in results:
        mem = f"{r['peak_mem_mib']:.0f}" if r.get("peak_mem_mib") is not None else "-"
        row = (f"| {r['variant']} | {r['batch']} | {r['median_s_per_iter']:.4f} | {r['img_per_s']:.2f} | "
               f"{r['speedup_vs_first']:.2f}x; {r['median_round_ratio']:.2f}x |")
        if cpu:
            q = r.get("quiet_median_s_per_iter")
            row += (f" {r['quiet_rounds']}/{r['rounds']} | {q:.3f} | {r['quiet_round_ratio']:.2f}x |" if q
                    else f" 0/{r['rounds']} | - | - |") + f" {r['cpu_s_per_iter']:.2f} |"
        lines.append(row + f" {mem} |")
    return "\n".join(lines)


def write_out(out, name, payload, markdown):
    if not out:
        return
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.json").write_text(json.dumps(payload, indent=1, default=str))
    (out / f"{name}.md").write_text(markdown + "\n")


def check_equivalence(args):
    """Ours and the reference with the same weights give the same losses on one step."""
    device = torch.device(args.device)
    with tempfile.TemporaryDirectory() as work:
        ours = Variant("ours", args, device, work)
        fused = Variant("ours+fused", args, device, work)
        ref = Variant("reference", args, device, work)
        src = [ours.trainer.model.g_ab, ours.trainer.model.g_ba, ours.trainer.model.d_a, ours.trainer.model.d_b]
        dst_fused = [fused.trainer.model.g_ab, fused.trainer.model.g_ba, fused.trainer.model.d_a, fused.trainer.model.d_b]
        # same roles in both: d_a judges domain A (real a, fake_a), d_b domain B
        dst_ref = [ref.ref.g_ab, ref.ref.g_ba, ref.ref.d_a, ref.ref.d_b]
        for s, d1, d2 in zip(src, dst_fused, dst_ref):
            ps = list(s.parameters())
            for d in (d1, d2):
                pd = list(d.parameters())
                assert len(ps) == len(pd) and all(x.shape == y.shape for x, y in zip(ps, pd))
                with torch.no_grad():
                    for x, y in zip(ps, pd):
                        y.copy_(x)
        a, b = make_inputs(args.batch, args.size, device)
        for step in range(2):
            t_ours = ours.step(a, b)
            t_fused = fused.step(a, b)
            lg_ref, ld_ref = ref.step(a, b)
            print(f"step {step}: L_G ours {float(t_ours['g_total'].detach()):.6f} fused {float(t_fused['g_total'].detach()):.6f} "
                  f"reference {float(lg_ref):.6f}; L_D ours {float(t_ours['d_a'] + t_ours['d_b']):.6f} "
                  f"fused {float(t_fused['d_a'] + t_fused['d_b']):.6f} reference {float(ld_ref):.6f}")
        diffs = [max((x - y).abs().max().item() for x, y in zip(s.parameters(), d.parameters()))
                 for s, d in zip(src, dst_ref)]
        diffs_f = [max((x - y).abs().max().item() for x, y in zip(s.parameters(), d.parameters()))
                   for s, d in zip(src, dst_fused)]
        print(f"max |weight difference| after 2 steps, ours vs reference per net: {['%.2e' % d for d in diffs]}; "
              f"ours vs fused: {['%.2e' % d for d in diffs_f]}")


# -- the GPU suite -------------------------------------------------------------------------
def gpu_suite(args):
    """The GPU table at --size/--blocks (256 / 9 by default): reference fp32 b1, ours fp32 b1,
    ours bf16 b1, fused bf16 b1, ours bf16 at b4/8/16, then torch.compile at b1 and the best
    batch. Finishes within --budget seconds (default 280), writing results after each phase."""
    device = torch.device(args.device if args.device != "cpu" or not torch.cuda.is_available() else "cuda")
    start = time.perf_counter()
    deadline = start + args.budget
    out = args.out or "bench_results/gpu_suite"
    info = machine(device)
    info["command"] = " ".join([Path(sys.executable).name] + sys.argv)
    payload = {"machine": info, "size": args.size, "blocks": args.blocks, "phases": []}
    md = [f"# GPU suite: {args.size} px, {args.blocks} blocks", "",
          f"Machine: {info.get('gpu', 'CPU ' + info['cpu'])}; torch {info['torch']}; command `{info['command']}`", ""]

    def log(msg):
        print(msg, flush=True)

    # FLOPs of one image's step, counted rather than assumed
    with tempfile.TemporaryDirectory() as work:
        v = Variant("ours+b1", args, device, work)
        a1, b1 = make_inputs(1, args.size, device)
        flops = count_flops(v, a1, b1)
        del v
    payload["flops_per_img"] = flops
    md.append(f"FLOPs per image per step (FlopCounterMode, ours fp32 b1): {flops / 1e12:.3f} TFLOP; "
              f"peak assumed {H100_BF16_DENSE / 1e12:.0f} TFLOP/s dense bf16 (H100 SXM).")
    log(md[-1])

    def add_phase(title, results):
        for r in results:
            r["frac_bf16_peak"] = r["img_per_s"] * flops / H100_BF16_DENSE
        payload["phases"].append({"title": title, "results": results})
        md.extend(["", f"## {title}", "", table(results, "peak CUDA MiB")
                   + "", "", "| variant | fraction of bf16 peak |", "|---|---|"]
                  + [f"| {r['variant']} | {100 * r['frac_bf16_peak']:.1f}% |" for r in results])
        md.extend(f"- {r['variant']}: {n}" for r in results for n in r["notes"])
        payload["elapsed_s"] = time.perf_counter() - start
        write_out(out, "gpu_suite", payload, "\n".join(md))

    eager = ["reference+b1", "ours+b1", "ours+bf16+b1", "ours+fused+bf16+b1",
             "ours+bf16+b4", "ours+bf16+b8", "ours+bf16+b16", "ours+cut+bf16+b1", "ours+fastcut+bf16+b1"]
    with tempfile.TemporaryDirectory() as work:
        log(f"eager phase: {', '.join(eager)}")
        results, variants, _ = bench(eager, args, device, work, log, deadline=start + 0.45 * args.budget)
        del variants
    add_phase("eager (alternating rounds)", results)
    log(table(results, "peak CUDA MiB"))
    bf16 = [r for r in results if r["variant"].startswith("ours+bf16+b")]
    best = max(bf16, key=lambda r: r["img_per_s"])
    payload["best_eager_bf16_batch"] = best["batch"]
    torch.cuda.empty_cache()

    if args.skip_compile:
        log("compile phase skipped (--skip-compile)")
    else:
        specs = ["ours+bf16+b1", "ours+bf16+compile+b1"]
        if best["batch"] != 1:
            specs += [f"ours+bf16+b{best['batch']}", f"ours+bf16+compile+b{best['batch']}"]
        log(f"compile phase: {', '.join(specs)} (compilation happens in the warm-up)")
        with tempfile.TemporaryDirectory() as work:
            try:
                results, variants, _ = bench(specs, args, device, work, log, deadline=deadline - 10)
                del variants
                add_phase("torch.compile (alternating rounds)", results)
                log(table(results, "peak CUDA MiB"))
            except Exception as exc:  # report, keep the eager results
                payload["compile_error"] = repr(exc)
                md.extend(["", f"compile phase failed: {exc!r}"])
                write_out(out, "gpu_suite", payload, "\n".join(md))
                log(f"compile phase failed: {exc!r}")
    payload["elapsed_s"] = time.perf_counter() - start
    md.extend(["", f"Total wall time {payload['elapsed_s']:.0f} s."])
    write_out(out, "gpu_suite", payload, "\n".join(md))
    log(f"written {out}/gpu_suite.md and .json ({payload['elapsed_s']:.0f} s)")


# -- main ------------------------------------------------------------------------------------
def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    p.add_argument("--size", type=int, default=None, help="image side (128; 256 in --gpu-suite)")
    p.add_argument("--blocks", type=int, default=None, help="residual blocks (6; 9 in --gpu-suite)")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--repeats", type=int, default=None, help="alternating rounds (7; 10 in --gpu-suite)")
    p.add_argument("--steps-per-round", type=int, default=None, help="steps per variant per round (1; 3 on CUDA)")
    p.add_argument("--warmup", type=int, default=None, help="warm-up steps per variant (1; 3 on CUDA)")
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    p.add_argument("--precision", default="fp32", choices=("fp32", "bf16", "auto"), help="for the default `ours` variant")
    p.add_argument("--compile", action="store_true", help="torch.compile for the default `ours` variant")
    p.add_argument("--gan", default="bce", choices=("bce", "lsgan"), help="adversarial loss of both (recipe: bce)")
    p.add_argument("--variants", default=None, help="comma-separated; default reference,ours")
    p.add_argument("--memory", action=argparse.BooleanOptionalAction, default=True,
                   help="(CPU) measure peak RSS in a subprocess per variant")
    p.add_argument("--flops", action="store_true", help="count the FLOPs of one step of ours")
    p.add_argument("--check", action="store_true", help="check ours = reference = fused on the same weights, then exit")
    p.add_argument("--profile", type=int, default=0, metavar="N", help="profile N steps of reference, ours and ours+fused (top ops)")
    p.add_argument("--gpu-suite", action="store_true")
    p.add_argument("--skip-compile", action="store_true", help="(--gpu-suite) leave out the compile phase")
    p.add_argument("--budget", type=float, default=280, help="(--gpu-suite) seconds in all")
    p.add_argument("--out", default=None, help="directory for JSON + markdown results")
    p.add_argument("--_child-memory", dest="child_memory", default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    suite = args.gpu_suite
    cuda = args.device == "cuda" or (suite and torch.cuda.is_available())
    args.size = args.size or (256 if suite else 128)
    args.blocks = args.blocks or (9 if suite else 6)
    args.repeats = args.repeats or (10 if suite else 7)
    args.steps_per_round = args.steps_per_round or (3 if cuda else 1)
    args.warmup = args.warmup if args.warmup is not None else (3 if cuda else 1)
    if cuda:
        torch.backends.cudnn.benchmark = False  # as the reference (default)

    if args.child_memory:
        return child_memory(args, args.child_memory)
    if args.check:
        return check_equivalence(args)
    if suite:
        return gpu_suite(args)

    device = torch.device(args.device)
    ours = "ours" + ("" if args.precision == "fp32" else "+" + args.precision) + ("+compile" if args.compile else "")
    specs = args.variants.split(",") if args.variants else ["reference", ours]
    info = machine(device)
    info["command"] = " ".join(["python"] + [str(Path(sys.argv[0]).relative_to(ROOT)) if Path(sys.argv[0]).is_absolute() else sys.argv[0]] + sys.argv[1:])
    print(f"{info['cpu']}, {info['cores']} cores, torch {info['torch']} ({info['torch_threads']} threads, "
          f"{info['cpu_capability']}), load average {' '.join(info.get('loadavg_start', []))}")
    print(f"{args.size} px, {args.blocks} blocks, batch {args.batch}, {args.device}; variants {', '.join(specs)}; "
          f"{args.warmup} warm-up, {args.repeats} alternating rounds x {args.steps_per_round} step(s)")
    with tempfile.TemporaryDirectory() as work:
        results, variants, (a, b) = bench(specs, args, device, work, lambda m: print(m, flush=True))
        if args.flops:
            for v in variants:
                if v.o["base"] == "ours":
                    fl = count_flops(v, *v.inputs(a, b))
                    print(f"FLOPs of one step of {v.spec}: {fl / 1e12:.3f} TFLOP ({fl / v.o['batch'] / 1e12:.3f} per image)")
                    break
        if args.profile:
            profile(variants, a, b, args.profile)
        del variants
    info["loadavg_end"] = Path("/proc/loadavg").read_text().split()[:3]
    if args.memory and device.type == "cpu":
        print("peak memory: one subprocess per variant ...", flush=True)
        mem = measure_cpu_memory(args, specs)
        for r in results:
            r["peak_mem_mib"] = mem[r["variant"]]
    label = "peak RSS MiB (own process)" if device.type == "cpu" else "peak CUDA MiB"
    md = table(results, label)
    md = "\n".join([md] + [f"- {r['variant']}: {n}" for r in results for n in r["notes"]])
    print(md)
    print(f"load average at the end: {' '.join(info['loadavg_end'])}")
    write_out(args.out, "train_step", {"machine": info, "args": vars(args), "results": results}, md)


def profile(variants, a, b, n):
    from torch.profiler import ProfilerActivity, profile as prof

    for v in variants:
        if v.spec not in ("reference", "ours", "ours+fused"):
            continue
        ai, bi = v.inputs(a, b)
        with prof(activities=[ProfilerActivity.CPU]) as p:
            for _ in range(n):
                v.step(ai, bi)
        total = sum(e.self_cpu_time_total for e in p.key_averages())
        print(f"\nprofile of {v.spec} ({n} step(s)): total self CPU {total / 1e6 / n:.2f} s/step")
        rows = sorted(p.key_averages(), key=lambda e: -e.self_cpu_time_total)[:15]
        for e in rows:
            print(f"  {e.key:45s} {e.self_cpu_time_total / 1e6 / n:7.3f} s/step {100 * e.self_cpu_time_total / total:5.1f}%  x{e.count // n}")


if __name__ == "__main__":
    main()
