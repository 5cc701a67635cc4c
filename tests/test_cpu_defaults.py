"""Defaults that depend on the machine: bf16 autocast on CPUs with native bf16 arithmetic, and
the data loader's worker count (data.num_workers: auto)."""
import statistics
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from unpaired import UnpairedError
from unpaired.runtime import devices
from unpaired.engine.trainer import Trainer, train

CPU = torch.device("cpu")


def fake_capabilities(monkeypatch, **flags):
    monkeypatch.delenv(devices.NATIVE_BF16_ENV, raising=False)  # detection, not the override
    caps = {"architecture": "x86_64", "avx2": True, "avx512_f": True, "avx512_vnni": True,
            "avx512_bf16": False, "amx_bf16": False, "amx_tile": False, **flags}
    monkeypatch.setattr(torch.cpu, "get_capabilities", lambda: caps)


@pytest.mark.parametrize("flags, expected", [
    ({"avx512_bf16": True}, torch.bfloat16),
    ({"amx_bf16": True, "amx_tile": True}, torch.bfloat16),
    ({}, None),  # AVX-512 with VNNI but no BF16 (e.g. Cascade Lake): fp32
])
def test_auto_precision_follows_the_cpus_bf16_arithmetic(monkeypatch, flags, expected):
    fake_capabilities(monkeypatch, **flags)
    assert devices.cpu_has_native_bf16() is (expected is not None)
    assert devices.autocast_dtype("auto", CPU) == expected
    assert devices.autocast_dtype("fp32", CPU) is None  # explicit choices are kept
    assert devices.autocast_dtype("bf16", CPU) == torch.bfloat16


def test_cpuinfo_flags_are_the_fallback_detection(monkeypatch, tmp_path):
    monkeypatch.delenv(devices.NATIVE_BF16_ENV, raising=False)
    monkeypatch.delattr(torch.cpu, "get_capabilities")
    cpuinfo = tmp_path / "cpuinfo"
    monkeypatch.setattr(devices, "CPUINFO", str(cpuinfo))
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f avx512_vnni\n")
    assert devices.autocast_dtype("auto", CPU) is None
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f avx512_bf16 amx_tile\n")
    assert devices.autocast_dtype("auto", CPU) == torch.bfloat16
    cpuinfo.unlink()  # nothing to read: fp32
    assert devices.autocast_dtype("auto", CPU) is None


@pytest.mark.parametrize("forced, expected", [("1", torch.bfloat16), ("0", None)])
def test_the_override_makes_auto_choose_as_on_another_cpu(monkeypatch, forced, expected):
    # what the CI runs the suite with (UNPAIRED_CPU_BF16=1): auto as on a CPU with native bf16
    fake_capabilities(monkeypatch, avx512_bf16=expected is None)  # the detection says the opposite
    monkeypatch.setenv(devices.NATIVE_BF16_ENV, forced)
    assert devices.autocast_dtype("auto", CPU) == expected
    monkeypatch.setenv(devices.NATIVE_BF16_ENV, "yes")
    with pytest.raises(UnpairedError, match="UNPAIRED_CPU_BF16='yes'"):
        devices.autocast_dtype("auto", CPU)


def test_translate_follows_auto_on_the_cpu(monkeypatch):
    from unpaired.inference.translate import Translator

    g = torch.nn.Conv2d(3, 3, 1)
    fake_capabilities(monkeypatch, avx512_bf16=True)
    assert Translator(g, 3, 3, device="cpu").dtype == torch.bfloat16
    fake_capabilities(monkeypatch)
    assert Translator(g, 3, 3, device="cpu").dtype is None


def float_tensors(obj, where=""):
    if torch.is_tensor(obj):
        if obj.is_floating_point():
            yield where, obj
    elif isinstance(obj, dict):
        for k, v in obj.items():
            yield from float_tensors(v, f"{where}/{k}")
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            yield from float_tensors(v, f"{where}/{i}")


@pytest.mark.slow
def test_bf16_auto_run_resumes_bit_exactly_with_fp32_checkpoints(monkeypatch, tiny_recipe):
    # this CPU may lack native bf16: report it as capable, so that auto picks bf16 here too
    monkeypatch.setattr(devices, "cpu_has_native_bf16", lambda: True)
    torch.set_num_threads(1)  # tiny nets: 2 threads gain nothing and lose much on shared cores
    common = ("train.precision=auto", "objective.params.pool_size=2", "data.batch_size=2")
    full = Trainer(tiny_recipe(*common, out="full"))
    assert full.amp_dtype == torch.bfloat16
    assert "cpu bf16 (auto)" in full._device_line()
    full = full.run()
    train(tiny_recipe(*common, "train.max_steps=2", out="split"))
    resumed = train(tiny_recipe(*common, out="split"), resume=True)
    assert resumed.step == full.step == 4
    a = torch.load(full.checkpoint, weights_only=True)
    b = torch.load(resumed.checkpoint, weights_only=True)
    assert a["precision"] == b["precision"] == "bf16"
    for net in a["nets"]:
        for k in a["nets"][net]:
            assert torch.equal(a["nets"][net][k], b["nets"][net][k]), (net, k)
    tensors = list(float_tensors({k: b[k] for k in ("nets", "optimizers", "objective_state")}))
    assert any("/pools/" in w for w, _ in tensors) and any("/optimizers/" in w for w, _ in tensors)
    assert all(t.dtype == torch.float32 for _, t in tensors), [(w, t.dtype) for w, t in tensors if t.dtype != torch.float32]


def test_checkpoint_records_fp32_where_auto_finds_no_bf16(monkeypatch, tiny_recipe):
    monkeypatch.setattr(devices, "cpu_has_native_bf16", lambda: False)
    torch.set_num_threads(1)
    result = train(tiny_recipe("train.max_steps=1"))
    assert torch.load(result.checkpoint, weights_only=True)["precision"] == "fp32"


@pytest.mark.parametrize("device, cores, threads, processes, expected", [
    ("cpu", 2, 2, 1, 0),    # a 2-core machine: the compute threads have every core
    ("cpu", 1, 1, 1, 0),
    ("cpu", 3, 2, 1, 1),
    ("cpu", 4, 2, 1, 2),
    ("cpu", 32, 16, 1, 2),  # at most 2 on the CPU
    ("cpu", 8, 2, 4, 0),    # 4 processes of torchrun: 2 cores each
    ("cuda", 2, 2, 1, 2),   # a GPU always gets 2+
    ("cuda", 16, 16, 1, 8),
    ("cuda", 16, 16, 8, 2),
    ("cuda", 64, 64, 2, 8),
])
def test_auto_loader_workers(device, cores, threads, processes, expected):
    got = devices.loader_workers("auto", torch.device(device), cores=cores, threads=threads, processes=processes)
    assert got == expected
    assert devices.loader_workers(3, torch.device(device), cores=cores, threads=threads) == 3


def test_num_workers_defaults_to_auto_and_resolves_in_the_trainer(tiny_recipe, monkeypatch):
    from unpaired.recipe.config import load_recipe
    from helpers import RECIPE

    assert load_recipe(RECIPE, []).data.num_workers == "auto"
    monkeypatch.setattr(devices, "usable_cores", lambda: 2)
    monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)
    torch.set_num_threads(2)
    trainer = Trainer(tiny_recipe("data.num_workers=auto"))
    assert trainer.num_workers == 0
    assert "2 threads, 0 loader workers" in trainer._device_line()
    for bad in ("-1", "many"):
        with pytest.raises(UnpairedError, match="data.num_workers"):
            tiny_recipe(f"data.num_workers={bad}")


FAULTS_CHILD = r"""
import resource, sys
import torch
from unpaired.runtime.devices import keep_freed_memory
if sys.argv[1] == "keep":
    assert keep_freed_memory()
torch.manual_seed(0)
net = torch.nn.Sequential(torch.nn.Conv2d(3, 16, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(16, 3, 3, padding=1))
x = torch.rand(1, 3, 768, 1024)  # 48 MiB activations, over glibc's 32 MiB mmap threshold
per_pass = []
with torch.no_grad():
    for _ in range(5):  # an inference pass over a big image, again and again: what tiles and frames do
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        net(x)
        per_pass.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
print(*per_pass)
"""


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_keep_freed_memory_stops_the_page_faults_of_repeated_big_activations():
    def steady_faults(mode):
        """The page faults of a typical pass once the first has set up: the median of passes 2 to 5
        (now and then one pass faults two buffers again, when an allocation lands in another
        thread's malloc arena: seen in 1 run of 3 here; the median is the steady state)."""
        done = subprocess.run([sys.executable, "-c", FAULTS_CHILD, mode], capture_output=True, text=True, check=True)
        return statistics.median(int(n) for n in done.stdout.split()[1:])

    plain, kept = steady_faults("plain"), steady_faults("keep")
    activation_pages = 16 * 768 * 1024 * 4 // 4096
    assert plain >= activation_pages  # every pass faults its activations in afresh
    assert kept <= plain / 10  # the pages of earlier passes are reused


def test_translate_on_the_cpu_keeps_freed_memory(monkeypatch, tmp_path):
    from PIL import Image

    from unpaired import cli

    calls = []
    monkeypatch.setattr(devices, "keep_freed_memory", lambda: calls.append(1) or True)
    Image.new("RGB", (20, 16), (10, 200, 30)).save(tmp_path / "x.png")
    checkpoint = Path(__file__).parent / "fixtures" / "format1_cyclegan.pt"
    assert cli.main(["translate", str(checkpoint), str(tmp_path / "x.png"), "--out", str(tmp_path / "o"),
                     "--device", "cpu", "--no-progress"]) == 0
    assert calls == [1] and (tmp_path / "o" / "x.png").is_file()
