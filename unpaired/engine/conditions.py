"""Conditioned networks: generators and discriminators that take more than the image.

An objective may need its networks to take conditions beside the image: UNSB's generator takes
the step of its sampler (``timestep``) and a noise vector (``noise``), its discriminators the
step. The objective's factory declares what it needs, as class attributes:

    generator_conditions = ("timestep", "noise")
    discriminator_conditions = ("timestep",)

A network declares what it takes with an attribute ``conditions`` (a tuple of these names) and,
when it takes ``noise``, ``noise_dim`` (the length of its noise vector). It is then called
``net(x, timestep=t, noise=z)``: ``t`` an int (one step for the batch) or an (N,) int64 tensor,
``z`` an (N, noise_dim) float tensor. Called with the image alone (the engine's probes, the
contract checks, an objective that needs no conditions) it runs at step 0 with zero noise.

``parts.generator()`` and ``parts.discriminator()`` check every network they build against the
objective's needs, and ``build.check_recipe`` checks the recipe's choices before any data is
read: a network that does not take them is refused with a message naming the recipe key. A
factory whose networks take conditions when asked says how, with an attribute
``conditions_param``: the name of its param listing them (the built-in ``resnet`` and
``patchgan``: ``conditioning``). The message then gives the override, and
``unpaired.testing.check_objective`` sets that param on its small networks.
"""
from __future__ import annotations

from ..errors import UnpairedError, one_of, quoted

TIMESTEP, NOISE = "timestep", "noise"
CONDITIONS = (TIMESTEP, NOISE)
KINDS = ("generator", "discriminator")


def needed(factory, kind: str) -> tuple[str, ...]:
    """The conditions an objective's ``factory`` needs of its ``kind`` networks."""
    return tuple(getattr(factory, f"{kind}_conditions", None) or ())


def taken(net) -> tuple[str, ...]:
    """The conditions a network declares it takes (its ``conditions`` attribute)."""
    return tuple(getattr(net, "conditions", None) or ())


def parse(key: str, value, allowed=CONDITIONS) -> tuple[str, ...]:
    """A recipe param listing conditions (``[timestep, noise]``), checked: a list of distinct
    names from ``allowed``; returned in ``allowed``'s order. For plugins' ``conditioning``."""
    if value is None:
        return ()
    if isinstance(value, str) or not isinstance(value, (list, tuple)):
        raise UnpairedError(f"{key}: {quoted(value)} must be a list of conditions, e.g. [{', '.join(allowed)}] or []")
    for name in value:
        one_of(key, name, allowed)
    if len(set(value)) != len(value):
        raise UnpairedError(f"{key}: {quoted(list(value))} names a condition twice")
    return tuple(c for c in allowed if c in value)


def enabling_params(factory, needs) -> dict:
    """The params that make ``factory``'s networks take ``needs`` (``{conditions_param:
    [...]}``), or {} when the factory does not say how."""
    param = getattr(factory, "conditions_param", None)
    return {param: list(needs)} if param and needs else {}


def check(net, kind: str, needs, objective: str, name: str, factory=None) -> None:
    """Refuse ``net`` (a ``kind`` network built by plugin ``name``) unless it takes every
    condition in ``needs``; the message names the recipe key to set."""
    if not needs:
        return
    has = taken(net)
    missing = [c for c in needs if c not in has]
    wanted = " and ".join(needs)
    if missing:
        enable = enabling_params(factory, needs)
        if enable:
            (param, value), = enable.items()
            raise UnpairedError(
                f"{kind}.params.{param}: objective {objective!r} needs a {kind} that takes {wanted}; {kind} "
                f"{name!r} takes {'them' if len(needs) > 1 else 'it'} when asked: set "
                f"'{kind}.params.{param}=[{', '.join(value)}]' (quoted: the shell splits it at its spaces)")
        raise UnpairedError(
            f"{kind}.name: objective {objective!r} needs a {kind} that takes {wanted}, and {kind} {name!r} takes "
            f"{', '.join(has) or 'none'} (a network declares them with a `conditions` attribute: docs/plugins.md, "
            "'Conditioned networks')")
    if NOISE in needs:
        dim = getattr(net, "noise_dim", None)
        if isinstance(dim, bool) or not isinstance(dim, int) or dim < 1:
            raise UnpairedError(f"{kind}.name: {kind} {name!r} takes noise but declares no noise_dim (a positive "
                                f"int, the length of its noise vector); it has {dim!r}")
