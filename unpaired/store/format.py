"""The checkpoint format, in one place: what a checkpoint file holds (:class:`Checkpoint`), its
dict form (``to_dict``, what ``torch.save`` writes), the upgrade of older formats
(:func:`upgrade`) and the checks a reader relies on (:func:`validate`). The trainer writes
through :class:`Checkpoint`; :func:`unpaired.store.checkpoint.load` upgrades every file it
reads; translate, eval, export, serve and the report validate before they build anything.

Format 2 (unpaired 0.2): the objective's networks by name (``nets``), its translators
(``translators``: direction -> the network and its channels), optimizers per phase, the
objective's own state, the random states, the augmentation's state; since 0.3, optionally the
averaged generator (``averaged``, ``train.ema``), which readers use unless asked for the trained
weights (:func:`chosen_weights`). Format 1 (unpaired 0.1.0,
CycleGAN only) is upgraded on load. A change of format adds a number here, an ``upgrade`` step
and a test with a stored file (tests/fixtures/).
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from ..errors import UnpairedError

FORMAT = 2  # 2: the objective's networks, optimizers per phase, objective_state, translators
READABLE = (1, 2)  # format 1: unpaired 0.1.0 (CycleGAN only), upgraded on load
DIRECTIONS = ("a2b", "b2a")
MAX_CHANNELS = 64


@dataclass
class Checkpoint:
    """What a checkpoint holds. Every checkpoint: the step, the recipe (``config``, environment
    values kept as written), the plugins that supplied each name (``plugins``), the image
    channels, the objective's name, its translators and the networks' weights. A checkpoint
    that resumes (``latest.pt``, ``best.pt``) also holds the training state below ``nets``; a
    kept step (``step_<N>.pt``) holds the translating networks only, and ``extra`` carries what
    other tools add (``made_by`` of the shipped model), as it is."""

    step: int
    config: dict
    objective: str
    translators: dict  # {direction: {"net": name, "in_channels": c, "out_channels": c}}
    nets: dict  # {network name: state_dict}
    channels: list = field(default_factory=lambda: [3, 3])
    epoch: int = 0
    plugins: dict = field(default_factory=dict)  # {role: {name, plugin, source, dist, version}}
    world_size: int = 1
    precision: str | None = None  # what train.precision resolved to
    device_line: str = ""  # the run's first line without its name and folder
    unpaired_version: str = ""
    # train.ema: {"decay", "updates", "nets": {network name: state_dict}} of the translating networks
    averaged: dict | None = None
    # the training state: present in a checkpoint that resumes, absent from a kept step
    optimizers: dict | None = None
    schedule: dict | None = None
    scaler: dict | None = None
    best: dict | None = None
    objective_state: dict | None = None
    rng: dict | None = None
    augment: dict | None = None
    extra: dict = field(default_factory=dict)

    @property
    def resumable(self) -> bool:
        return self.optimizers is not None

    def to_dict(self) -> dict:
        """The file's content: ``format`` first, then every field that is set (the training
        state's only when present), then ``extra``."""
        out: dict[str, Any] = {"format": FORMAT}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name != "extra" and value is not None:
                out[f.name] = value
        out.update(self.extra)
        return out

    @classmethod
    def from_dict(cls, state: dict, path: Any = "(in memory)") -> "Checkpoint":
        """A checkpoint from a file's content (any readable format), validated."""
        state = upgrade(state)
        validate(state, path)
        known = {f.name for f in fields(cls)} - {"extra"}
        return cls(**{k: v for k, v in state.items() if k in known},
                   extra={k: v for k, v in state.items() if k not in known and k != "format"})


def upgrade(state: dict) -> dict:
    """A format-1 checkpoint (unpaired 0.1.0, whose one objective was CycleGAN) in today's
    layout: its pools become the cyclegan objective's state, its generators the translators.
    A rank file (pools and RNG only) is upgraded the same way."""
    if state.get("format") != 1:
        return state
    state = dict(state, format=FORMAT)
    if "pools" in state:
        state["objective_state"] = {"pools": state.pop("pools")}
    if "nets" in state:
        state.setdefault("objective", "cyclegan")
        ca, cb = state.get("channels", (3, 3))
        state.setdefault("translators", {"a2b": {"net": "g_ab", "in_channels": ca, "out_channels": cb},
                                         "b2a": {"net": "g_ba", "in_channels": cb, "out_channels": ca}})
    return state


def require(state: dict, path: Any, *keys: str) -> dict:
    """An error naming the checkpoint and the first of ``keys`` it lacks."""
    for key in keys:
        if key not in state:
            raise UnpairedError(f"checkpoint {path} has no {key!r}: it is damaged or was not written by unpaired")
    return state


def validate(state: dict, path: Any) -> None:
    """The parts translate, eval and export read, each of the type unpaired writes: an
    UnpairedError naming the part of a damaged or crafted checkpoint, never a traceback."""
    def bad(part, what):
        raise UnpairedError(f"checkpoint {path}: {part} {what}; it is damaged or was not written by unpaired")

    require(state, path, "nets", "translators")
    translators, nets = state["translators"], state["nets"]
    if not isinstance(translators, dict) or not translators:
        bad("'translators'", f"is {type(translators).__name__}, not a mapping of direction to network")
    for direction, record in translators.items():
        if direction not in DIRECTIONS:
            bad("'translators'", f"names the direction {direction!r} (directions: {', '.join(DIRECTIONS)})")
        if not isinstance(record, dict) or not isinstance(record.get("net"), str):
            bad(f"translator {direction!r}", f"is {record!r}, not a record naming its network ('net')")
        channels(record, path)
    if not isinstance(nets, dict):
        bad("'nets'", f"is {type(nets).__name__}, not a mapping of network names to weights")
    for name, weights in nets.items():
        if not isinstance(weights, dict):
            bad(f"the weights of network {name!r}", f"are {type(weights).__name__}, not a mapping of tensors")
    averaged = state.get("averaged")
    if averaged is not None:
        if not isinstance(averaged, dict) or not isinstance(averaged.get("nets"), dict):
            bad("'averaged'", f"is {type(averaged).__name__}, not the averaged generator's record")
        for name, weights in averaged["nets"].items():
            if name not in nets or not isinstance(weights, dict):
                bad(f"the averaged weights of {name!r}", "do not match a network of 'nets'")
    pair = state.get("channels", (3, 3))
    if not (isinstance(pair, (list, tuple)) and len(pair) == 2 and all(_count(c) for c in pair)):
        bad("'channels'", f"is {pair!r}, not two channel counts")


def chosen_weights(state: dict, raw: bool = False) -> dict:
    """``state`` with the weights a reader uses in ``nets``: the averaged generator's where the
    checkpoint holds one (``train.ema``), the trained ones with ``raw`` (``--raw``). The result
    says which in ``weights`` ("averaged" | "trained") and holds no ``averaged`` any more, so
    choosing again changes nothing."""
    if "averaged" not in state:
        return state if "weights" in state else dict(state, weights="trained")
    state = dict(state)
    averaged = state.pop("averaged")
    if raw or not isinstance(averaged, dict) or not isinstance(averaged.get("nets"), dict):
        return dict(state, weights="trained")
    nets = dict(state.get("nets") or {})
    nets.update(averaged["nets"])
    return dict(state, nets=nets, weights="averaged")


def channels(record: Any, path: Any) -> tuple[int, int]:
    """(in, out) channels of a translator record, checked."""
    if isinstance(record, dict):
        cin, cout = record.get("in_channels"), record.get("out_channels")
        if isinstance(cin, int) and isinstance(cout, int) and _count(cin) and _count(cout):
            return cin, cout
    raise UnpairedError(f"checkpoint {path}: translator {record!r} does not name two channel counts")


def _count(c: Any) -> bool:
    return isinstance(c, int) and not isinstance(c, bool) and 0 < c <= MAX_CHANNELS
