"""Several processes training together, started by torchrun (PyTorch's launcher):

    torchrun --nproc-per-node 4 -m unpaired run recipes/horse2zebra.yaml

Each process (rank) trains on its share of every step's batches; DistributedDataParallel
averages the gradients, so all ranks keep identical weights. Rank 0 alone writes logs,
samples and checkpoints. Multi-node: the same command on each node with
``--nnodes N --node-rank R --rdzv-endpoint HOST:PORT`` (docs/training.md, "Several GPUs").
"""
import datetime
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass
class World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def is_rank_zero(self):
        """The process that writes logs, samples and checkpoints (the only one without torchrun)."""
        return self.rank == 0

    @property
    def is_distributed(self):
        """More than one process trains (under torchrun); collectives are needed."""
        return self.size > 1


def setup(device_name):
    """Join the process group when started by torchrun; a World of 1 otherwise."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size <= 1:
        return World()
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = device_name != "cpu" and torch.cuda.is_available()
    if use_cuda:
        torch.cuda.set_device(local_rank)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if use_cuda else "gloo", timeout=datetime.timedelta(minutes=30))
    return World(rank, size, local_rank)


def teardown(world, together=True) -> None:
    """Leave the process group; ``together``: after a barrier, since a rank that tears down
    while another still talks to it can abort (seen with gloo). Not after an error, when the
    other ranks may never reach the barrier."""
    if world.is_distributed and dist.is_initialized():
        if together:
            dist.barrier()
        dist.destroy_process_group()


def wrap(module, device):
    """A DistributedDataParallel wrapper of ``module`` (its parameters on ``device``)."""
    from torch.nn.parallel import DistributedDataParallel

    ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(module, device_ids=ids)


def mean(world, tensors):
    """The mean over ranks of a dict of scalar tensors (one collective)."""
    if not world.is_distributed or not tensors:
        return tensors
    keys = sorted(tensors)
    flat = torch.stack([tensors[k].float() for k in keys])
    dist.all_reduce(flat)
    flat /= world.size
    return dict(zip(keys, flat))


def total(world, tensor):
    """The sum over ranks of ``tensor`` (a new tensor; ``tensor`` itself in one process)."""
    if not world.is_distributed:
        return tensor
    out = tensor.clone()
    dist.all_reduce(out)
    return out


def same_values(world, tensors, device):
    """True when every rank holds the same values in the dict of scalar tensors ``tensors``."""
    if not world.is_distributed or not tensors:
        return True
    flat = torch.stack([tensors[k].detach().double().reshape(()) for k in sorted(tensors)]).to(device)
    gathered = [torch.zeros_like(flat) for _ in range(world.size)]
    dist.all_gather(gathered, flat)
    return all(torch.equal(g, gathered[0]) for g in gathered)


def any_rank(world, flag, device):
    """True on every rank when ``flag`` is true on any rank."""
    if not world.is_distributed:
        return bool(flag)
    t = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())


def same_weights(world, module, device):
    """True when every rank holds the same parameters as rank 0 (a checksum comparison)."""
    return same_tensors(world, list(module.parameters()), device)


def same_tensors(world, tensors, device):
    """True when every rank holds the same ``tensors`` as rank 0 (a checksum comparison)."""
    if not world.is_distributed:
        return True
    total = sum(t.detach().double().sum() for t in tensors if t.is_floating_point()).to(device)
    gathered = [torch.zeros_like(total) for _ in range(world.size)]
    dist.all_gather(gathered, total)
    return all(torch.equal(g, gathered[0]) for g in gathered)
