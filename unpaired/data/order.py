"""Reproducible, resumable data order.

The order of a run is a pure function of (seed, step): epoch e shuffles the items with a
generator seeded by (seed, e), and every item is loaded with Python's, NumPy's and torch's
random generators seeded by (seed, e, position). So a dataset plugin may draw random crops,
flips or partners freely, and a resumed run (any number of workers) sees exactly the items
an uninterrupted one would have seen.
"""
from collections.abc import Iterator
from typing import Any

import torch

from ..errors import UnpairedError
from ..store.rng import seeded

_MIX = 1_000_003


def item_seed(seed: int, epoch: int, position: int) -> int:
    return ((seed * _MIX + epoch) * _MIX + position) % (2**63)


class SeededItems(torch.utils.data.Dataset):
    """Wraps a dataset; ``items[(index, seed)]`` loads ``dataset[index]`` under ``seed``
    without disturbing the caller's random state."""

    def __init__(self, dataset: Any) -> None:  # a plugin's dataset, as it is: its errors are named here
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: tuple[int, int]) -> Any:
        index, seed = key
        with seeded(seed, cuda=False):
            try:
                return self.dataset[index]
            except UnpairedError:
                raise
            except Exception as exc:  # named here, not as a traceback from a loader worker
                raise UnpairedError(f"data.name: the dataset raised on item {index} of {len(self.dataset)}: "
                                    f"{type(exc).__name__}: {exc}; the plugin contract: every index below "
                                    "len() returns an item") from None


class StepBatches(torch.utils.data.Sampler):
    """Batches of (index, seed) for global steps ``start`` .. ``stop - 1``."""

    def __init__(self, n_items: int, batch_size: int, seed: int, start: int, stop: int, rank: int = 0,
                 world: int = 1) -> None:
        self.n, self.bs, self.seed = n_items, batch_size, seed
        self.start, self.stop = start, stop
        self.rank, self.world = rank, world
        self.steps_per_epoch = n_items // (batch_size * world)
        if self.steps_per_epoch == 0:
            raise ValueError(f"{n_items} items are fewer than one batch of {batch_size * world}")

    def __len__(self) -> int:
        return max(0, self.stop - self.start)

    def _order(self, epoch: int) -> list[int]:
        g = torch.Generator().manual_seed(item_seed(self.seed, epoch, 0))
        return torch.randperm(self.n, generator=g).tolist()

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        epoch: int | None = None
        order: list[int] = []  # the epoch's permutation: drawn at the first step (its epoch differs from None)
        for step in range(self.start, self.stop):
            e, k = divmod(step, self.steps_per_epoch)
            if e != epoch:
                epoch, order = e, self._order(e)
            first = (k * self.world + self.rank) * self.bs
            yield [(order[p], item_seed(self.seed, e, p + 1)) for p in range(first, first + self.bs)]


def make_loader(dataset: Any, batch_size: int, seed: int, start: int, stop: int, num_workers: int = 0,
                pin_memory: bool = False, rank: int = 0, world: int = 1) -> torch.utils.data.DataLoader:
    sampler = StepBatches(len(dataset), batch_size, seed, start, stop, rank=rank, world=world)
    return torch.utils.data.DataLoader(
        SeededItems(dataset), batch_sampler=sampler, num_workers=num_workers,
        pin_memory=pin_memory, persistent_workers=False,
        prefetch_factor=4 if num_workers else None,
        generator=torch.Generator().manual_seed(seed),  # leaves the global RNG alone
        collate_fn=collate,
    )


def collate(items: list[Any]) -> Any:
    """default_collate, with items of different sizes named as a contract error."""
    for d in ("A", "B"):
        shapes = {tuple(it[d].shape) for it in items if isinstance(it, dict) and hasattr(it.get(d), "shape")}
        if len(shapes) > 1:
            raise UnpairedError(f"data.name: one batch holds {d} images of sizes {sorted(shapes)}; the plugin "
                                "contract: all items of a dataset have one size (crop or resize them)")
    return torch.utils.data.default_collate(items)


def fixed_items(dataset: Any, n: int, seed: int) -> dict[str, Any]:
    """The first ``n`` items, loaded reproducibly, as one batch (for sample grids)."""
    items = SeededItems(dataset)
    batch = [items[(i, item_seed(seed, -1, i))] for i in range(min(n, len(dataset)))]
    return torch.utils.data.default_collate(batch)
