"""The plugin contract: hook specifications of the ``unpaired`` pluggy project.

A plugin is a module (or any object) with functions marked ``@unpaired.hookimpl`` whose
names are the hooks below. Each registration hook is called once, with one keyword
argument ``register``: a callable ``register(name, factory, help="")``. Implementations
must take exactly the argument named here, with no default value.

Names are unique across all plugins and kinds share no namespace rules beyond that:
registering a name that another plugin already registered for the same kind is an error
that names both plugins.
"""
import pluggy

PROJECT = "unpaired"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def register_generators(register):
    """Register generator architectures.

    ``register(name, factory, help="")`` where ``factory(in_channels, out_channels, **params)``
    returns an ``nn.Module`` mapping ``(N, in_channels, H, W)`` to ``(N, out_channels, H, W)``
    with values in [-1, 1], for any H and W that are multiples of 4. Recipe ``params`` are
    passed as keyword arguments and checked against the factory's signature first.
    """


@hookspec
def register_discriminators(register):
    """Register discriminator architectures.

    ``register(name, factory, help="")`` where ``factory(in_channels, **params)`` returns an
    ``nn.Module`` mapping ``(N, in_channels, H, W)`` to raw logits (no sigmoid), either a
    patch map ``(N, 1, h, w)`` or one logit per image ``(N, 1)``.
    """


@hookspec
def register_losses(register):
    """Register losses.

    ``register(name, factory, help="")`` where ``factory(**params)`` returns either

    * an **adversarial** loss: an object with ``generator_loss(fake_logits) -> Tensor`` and
      ``discriminator_loss(real_logits, fake_logits) -> Tensor`` (scalar tensors; the logits
      are whatever a discriminator returns), or
    * a **reconstruction** loss: any other callable ``(output, target) -> Tensor`` (scalar),
      used for the cycle and identity terms.

    No base class is needed. A recipe that puts one kind in the other's slot is an error.
    """


@hookspec
def register_datasets(register):
    """Register datasets of unpaired images.

    ``register(name, factory, help="")`` where ``factory(**params)`` returns a
    ``torch.utils.data.Dataset`` whose items are dicts ``{"A": Tensor[C, H, W],
    "B": Tensor[C, H, W]}`` with values in [-1, 1] (extra keys such as paths may ride
    along). Its length is the number of pairs in one epoch. The engine seeds Python's,
    NumPy's and torch's random generators before each item, so an item's randomness
    (crops, flips, which B) is reproducible and resumable without any work in the plugin.
    """
