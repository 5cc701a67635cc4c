"""Probes of the plugin contract, run once at start so that a plugin that breaks it is named
with the rule it breaks, not blamed on another network in the middle of a run:

* network size, estimated on the ``meta`` device before any memory is allocated, its
  construction bounded in modules, parameters and time;
* one forward of each generator and discriminator on a tiny input (batch 1, no gradients,
  eval mode, so no state changes and no random numbers are drawn);
* the dataset: items that load and share one size.
"""
import contextlib
import os
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import torch
from torch import nn
from torch.nn.modules import module as torch_module

from ..errors import UnpairedError
from . import contract

if TYPE_CHECKING:
    from omegaconf import DictConfig

MAX_PARAMS = 2_000_000_000  # per network (8 GB of fp32 weights): beyond it a recipe is refused
# and the construction itself is bounded, so a recipe (or a checkpoint's) with n_blocks=3000000
# is refused in seconds instead of building layers for hours: the built-in ResNet at 9 blocks has
# ~60 modules, the largest real generators a few thousand
MAX_MODULES = 10_000
BUILD_SECONDS = 10.0


class _OverBudget(BaseException):
    """Raised inside a plugin's constructor (a BaseException: its own ``except Exception`` does
    not swallow it), turned into an UnpairedError by :func:`bounded_construction`."""


@contextlib.contextmanager
def bounded_construction(key: str, name: str, max_modules: int = MAX_MODULES, seconds: float = BUILD_SECONDS,
                         max_params: int = MAX_PARAMS) -> Iterator[dict[str, int]]:
    """Within: building networks stops with an UnpairedError naming ``key`` once more than
    ``max_modules`` modules or ``max_params`` parameters are registered, or ``seconds`` pass
    (counted by torch's global module and parameter registration hooks)."""
    deadline = time.monotonic() + seconds
    count = {"modules": 0, "params": 0}

    def check() -> None:
        if count["modules"] > max_modules:
            raise _OverBudget(f"more than {max_modules:,} modules (layers)")
        if count["params"] > max_params:
            raise _OverBudget(f"more than {max_params:,} parameters ({max_params * 4 / 2**30:,.0f} GB of fp32 weights)")
        if time.monotonic() > deadline:
            raise _OverBudget(f"more than {seconds:g} s to build ({count['modules']:,} modules by then)")

    def on_module(module: nn.Module, attr: str, submodule: nn.Module) -> None:
        count["modules"] += 1
        check()

    def on_param(module: nn.Module, attr: str, param: nn.Parameter | None) -> None:
        if param is not None:
            count["params"] += param.numel()
        check()

    handles = [torch_module.register_module_module_registration_hook(on_module),
               torch_module.register_module_parameter_registration_hook(on_param)]
    try:
        yield count
    except _OverBudget as exc:
        raise UnpairedError(f"{key}.params: {key} {name!r} with these params would have {exc}, more than unpaired "
                            f"builds; check the widths and depths in {key}.params") from None
    finally:
        for h in handles:
            h.remove()


def count_params(build: Callable[[], nn.Module], key: str = "network", name: str = "?") -> int | None:
    """Parameters of the network ``build()`` makes, counted on the meta device (no memory) within
    the construction budget (:func:`bounded_construction`); None when the plugin cannot be built there."""
    try:
        with torch.device("meta"), bounded_construction(key, name):
            net = build()
    except UnpairedError:
        raise
    except Exception:  # a plugin that needs real tensors to build: no estimate
        return None
    try:
        return sum(p.numel() for p in net.parameters())
    except Exception:
        return None


def check_size(build: Callable[[], nn.Module], key: str, name: str) -> int | None:
    """Refuse a network of more than MAX_PARAMS parameters (or MAX_MODULES modules, or one that
    takes more than BUILD_SECONDS to build) before it is allocated."""
    n = count_params(build, key, name)
    if n is not None and n > MAX_PARAMS:
        raise UnpairedError(f"{key}.params: {key} {name!r} with these params would have {n:,} parameters "
                            f"({n * 4 / 2**30:,.0f} GB of fp32 weights), more than the {MAX_PARAMS:,} "
                            f"unpaired builds; check the widths and depths in {key}.params")
    return n


def _input(channels: int, size: tuple[int, int], device: str | torch.device) -> torch.Tensor:
    h, w = size
    x = torch.linspace(-1, 1, channels * h * w, device=device).reshape(1, channels, h, w)
    return x


def _forward(net: nn.Module, x: torch.Tensor, key: str, name: str, rule: str) -> Any:
    mode = net.training
    net.eval()
    try:
        with torch.no_grad():
            return net(x)
    except UnpairedError:
        raise
    except Exception as exc:
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise UnpairedError(f"{key}.name: {key} {name!r} failed on a {tuple(x.shape)} input "
                            f"({type(exc).__name__}: {msg}); the plugin contract: {rule}") from None
    finally:
        net.train(mode)


def check_generator(net: nn.Module, key: str, name: str, in_channels: int, out_channels: int, size: tuple[int, int],
                    device: str | torch.device = "cpu") -> torch.Tensor:
    """One forward: (1, Cin, H, W) float32 -> (1, Cout, H, W) float32 (:data:`contract.GENERATOR`)."""
    x = _input(in_channels, size, device)
    y = _forward(net, x, key, name, contract.GENERATOR)
    problem = contract.generator_output(x, y, out_channels)
    if problem:
        raise UnpairedError(f"{key}.name: {key} {name!r} {problem}; the plugin contract: {contract.GENERATOR}")
    return y


def check_discriminator(net: nn.Module, key: str, name: str, in_channels: int, size: tuple[int, int],
                        device: str | torch.device = "cpu") -> torch.Tensor:
    """One forward: (1, C, H, W) -> raw logits (1, 1, h, w) or (1, 1) (:data:`contract.DISCRIMINATOR`)."""
    x = _input(in_channels, size, device)
    y = _forward(net, x, key, name, contract.DISCRIMINATOR)
    problem = contract.discriminator_output(x, y)
    if problem:
        raise UnpairedError(f"{key}.name: {key} {name!r} {problem}; the plugin contract: {contract.DISCRIMINATOR}")
    return y


def check_model(cfg: "DictConfig", assembly: Any, sizes: tuple[tuple[int, int], tuple[int, int]],
                device: str | torch.device = "cpu") -> None:
    """Probe each network the objective built through ``parts`` (one per kind and channels) on
    images of ``sizes`` ((H, W) of A, of B); networks of the objective's own (CUT's F) are its
    business. ``assembly``: an unpaired.engine.assemble.Assembly (not imported: the runtime
    layer sits below the engine)."""
    sa, sb = sizes
    seen = set()
    for net in assembly.objective.networks().values():
        record = assembly.parts.built.get(id(net))
        if record is None or record in seen:
            continue
        seen.add(record)
        for size in dict.fromkeys((sa, sb)):
            if record[0] == "generator":
                check_generator(net, "generator", cfg.generator.name, record[1], record[2], size, device)
            else:
                check_discriminator(net, "discriminator", cfg.discriminator.name, record[1], size, device)


def check_dataset(dataset: Any, name: str,
                  key: str = "data") -> tuple[tuple[int, int], tuple[tuple[int, int], tuple[int, int]]]:
    """Items 0, the middle and the last load, are dicts of "A" and "B" tensors (C, H, W) with
    sides that are multiples of 4, and share one shape per domain; returns ((channels of A, of
    B), ((H, W) of A, (H, W) of B)). Item 0 is loaded once, here."""
    from ..data import SeededItems

    items = SeededItems(dataset)
    try:
        n = len(dataset)
    except TypeError:
        raise UnpairedError(f"{key}.name: dataset {name!r} has no length") from None
    if n == 0:
        raise UnpairedError(f"{key}.name: dataset {name!r} is empty")
    shapes: dict[str, dict[int, tuple]] = {}
    for index in sorted({0, n // 2, n - 1}):
        try:
            item = items[(index, index)]
        except UnpairedError:
            raise
        except Exception as exc:
            what = "the first item failed to load" if index == 0 else f"raised on item {index} of {n}"
            raise UnpairedError(f"{key}.name: dataset {name!r} {what}: {type(exc).__name__}: {exc}; the plugin "
                                "contract: every index below len() returns an item") from None
        problem = contract.dataset_item(item)
        if problem:
            raise UnpairedError(f"{key}.name: dataset {name!r} item {index} {problem}; the plugin contract: "
                                f"{contract.DATASET}")
        for d in ("A", "B"):
            shapes.setdefault(d, {})[index] = tuple(item[d].shape)
    for d, by_index in shapes.items():
        if len(set(by_index.values())) > 1:
            seen = ", ".join(f"item {i}: {s}" for i, s in by_index.items())
            raise UnpairedError(f"{key}.name: dataset {name!r} gives {d} images of different sizes ({seen}); "
                                "the plugin contract: all items of a dataset have one size (crop or resize them)")
    first = {d: shapes[d][0] for d in ("A", "B")}
    return (first["A"][0], first["B"][0]), (first["A"][1:], first["B"][1:])


def load_resumed(load: Callable[[dict], object], state: dict, path: str | os.PathLike) -> None:
    """``load(state)``, with weights that do not fit the recipe's networks named as such."""
    try:
        load(state)
    except UnpairedError:
        raise
    except (RuntimeError, KeyError, ValueError, TypeError, IndexError) as exc:
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)
        raise UnpairedError(f"--resume: {path} does not fit the networks and optimizers this recipe builds "
                            f"({type(exc).__name__}: {msg}); it is damaged or from another recipe") from None
