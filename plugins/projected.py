"""The projected discriminator (Sauer, Chitta, Müller, Geiger: "Projected GANs Converge Faster",
NeurIPS 2021): a discriminator that looks at images through a frozen pretrained network.

``projected``: the image (as the engine's augmentation left it) is resized to ``size`` pixels,
passed through the recipe's backbone (a registered ``backbone``: ``efficientnet_lite0`` by
default, frozen, in eval mode), whose features at four strides are mixed by fixed random
projections, then judged by a small trained head per scale:

* cross-channel mixing: a random 1x1 convolution per scale to ``proj_channels`` (x1, x2, x4, x8);
* cross-scale mixing: top-down, each scale's mix plus the coarser one's upsampled, through a
  random 3x3 convolution (as a feature pyramid, but fixed);
* per scale a head: 1x1 convolution to ``ndf`` channels, stride-2 3x3 convolutions until the map
  is at most ``map_size`` wide, a 3x3 convolution to one logit per place; spectral normalisation
  on every layer (the paper's). The maps are brought to the smallest map's size and set side by
  side: one (N, 1, h, scales * w) tensor, each scale weighing the same in the losses (the
  contract's one tensor, as ``multiscale_patchgan``).

``patchgan: true`` adds a PatchGAN (``patchgan_params``) on the image itself beside the heads
(joliGEN's pairing), its map joined the same way. The projections are drawn from ``proj_seed``
(a recipe param, so resume and several processes are exact) and are not trained, not
initialised by ``train.init`` and not saved; neither is the backbone: the state dict holds the
heads (and the PatchGAN), plus the backbone's name and the SHA-256 of its weights, and loading
it with another backbone is refused. ``conditioning: [timestep]`` adds the step's embedding as a
per-channel bias in every head (UNSB).
"""
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from unpaired.api import TIMESTEP, UnpairedError, get_registry, hookimpl, parse_conditions

from .conditioning import TimeEmbedding, time_bias
from .patchgan import PatchGAN

KEY = "discriminator.params"


def _positive_int(name, value, low=1):
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise UnpairedError(f"{KEY}.{name}: {value!r} must be an integer >= {low}")
    return value


class Head(nn.Module):
    """One scale's trained discriminator: 1x1 to ``ndf``, stride-2 3x3 until at most
    ``map_size`` wide, 3x3 to one logit (spectral norm throughout)."""

    def __init__(self, cin, ndf, downs, conditioned):
        super().__init__()
        layers = [spectral_norm(nn.Conv2d(cin, ndf, 1))]
        layers += [spectral_norm(nn.Conv2d(ndf, ndf, 3, stride=2, padding=1)) for _ in range(downs)]
        self.convs = nn.ModuleList(layers)
        self.out = spectral_norm(nn.Conv2d(ndf, 1, 3, padding=1))
        self.time_bias = nn.ModuleList(nn.Linear(4 * ndf, ndf) for _ in layers) if conditioned else None

    def forward(self, x, temb=None):
        for i, conv in enumerate(self.convs):
            x = conv(x)
            if self.time_bias is not None:
                x = x + time_bias(self.time_bias[i], temb)
            x = F.leaky_relu(x, 0.2)
        return self.out(x)


class Projected(nn.Module):
    """The projected discriminator (module docstring)."""

    test_params = {"size": 64, "ndf": 8, "proj_channels": 8}  # small for the contract tests
    conditions_param = "conditioning"

    def __init__(self, in_channels, backbone="efficientnet_lite0", backbone_params=None, size=224,
                 proj_channels=64, proj_seed=0, ndf=64, map_size=8, patchgan=False, patchgan_params=None,
                 conditioning=()) -> None:
        super().__init__()
        if in_channels not in (1, 3):
            raise UnpairedError(f"discriminator.name: projected judges RGB (or grayscale) images through a "
                                f"pretrained backbone; these have {in_channels} channels")
        self.in_channels = in_channels
        self.size = _positive_int("size", size, 32)
        proj_channels = _positive_int("proj_channels", proj_channels)
        ndf = _positive_int("ndf", ndf)
        self.map_size = _positive_int("map_size", map_size)
        _positive_int("proj_seed", proj_seed, 0)
        self.conditions = parse_conditions(f"{KEY}.conditioning", conditioning, (TIMESTEP,))
        net = get_registry().create("backbone", backbone, dict(backbone_params or {}), key=f"{KEY}.backbone")
        channels = tuple(getattr(net, "feature_channels", ()))
        if not callable(getattr(net, "features", None)) or len(channels) < 1:
            raise UnpairedError(f"{KEY}.backbone: backbone {backbone!r} has no features(x) and feature_channels "
                                "(the contract: register_backbones in unpaired/hookspecs.py)")
        self.backbone_name = backbone
        self.backbone_sha256 = str(getattr(net, "sha256", ""))
        self._backbone = [net.eval().requires_grad_(False)]  # a list: not a sub-module (not saved, not trained)
        # the fixed random projections, from proj_seed: buffers that are not saved
        gen = torch.Generator().manual_seed(proj_seed)
        widths = [proj_channels * 2 ** i for i in range(len(channels))]
        for i, (cin, cout) in enumerate(zip(channels, widths)):
            self.register_buffer(f"ccm{i}", _random_conv(cout, cin, 1, gen), persistent=False)
            finer = widths[i - 1] if i else cout  # the cross-scale mix feeds the next finer scale
            self.register_buffer(f"csm{i}", _random_conv(finer, cout, 3, gen), persistent=False)
        sides = _feature_sides(net, self.size, len(channels))
        downs = [max(0, (s - 1).bit_length() - (self.map_size - 1).bit_length()) for s in sides]
        finer_widths = [widths[i - 1] if i else widths[0] for i in range(len(widths))]
        self.heads = nn.ModuleList(Head(w, ndf, d, bool(self.conditions)) for w, d in zip(finer_widths, downs))
        if self.conditions:
            self.time_embed = TimeEmbedding(4 * ndf, 4 * ndf, final_act=False)
        self.patchgan = None
        if patchgan:
            params = {"ndf": 64, "n_layers": 3, **(patchgan_params or {}),
                      "conditioning": list(self.conditions)}
            self.patchgan = PatchGAN(in_channels, **params)

    @property
    def backbone(self):
        return self._backbone[0]

    def _apply(self, fn, *args, **kwargs):
        # .to(device) / .float() reach the backbone too, though it is not a sub-module
        self._backbone[0] = self._backbone[0]._apply(fn, *args, **kwargs)
        return super()._apply(fn, *args, **kwargs)

    def train(self, mode=True):
        super().train(mode)
        self.backbone.eval()  # its batch norms keep ImageNet's statistics
        return self

    def get_extra_state(self):
        return {"backbone": self.backbone_name, "sha256": self.backbone_sha256}

    def set_extra_state(self, state):
        saved = state if isinstance(state, dict) else {}
        if saved.get("backbone") != self.backbone_name or saved.get("sha256") != self.backbone_sha256:
            raise UnpairedError(
                f"this discriminator was trained through backbone {saved.get('backbone')!r} (weights SHA-256 "
                f"{str(saved.get('sha256'))[:12]}...); the installed {self.backbone_name!r} has "
                f"{self.backbone_sha256[:12]}...: its judgements would not match. Install the same weights, or "
                "start a new run")

    def forward(self, x, timestep=None):
        if timestep is not None and not self.conditions:
            raise UnpairedError(f"{KEY}.conditioning: this projected discriminator takes no timestep; set "
                                "conditioning: [timestep]")
        temb = self.time_embed(timestep, x.device) if self.conditions else None
        image = x
        if self.in_channels == 1:
            x = x.expand(-1, 3, -1, -1)
        if x.shape[-2:] != (self.size, self.size):
            x = F.interpolate(x, size=(self.size, self.size), mode="bilinear", align_corners=False)
        feats = self.backbone.features(x)
        mixed = [F.conv2d(f, getattr(self, f"ccm{i}")) for i, f in enumerate(feats)]
        pyramid: list[torch.Tensor] = [mixed[0]] * len(mixed)  # each place set below
        carry = None
        for i in reversed(range(len(mixed))):
            y = mixed[i] if carry is None else mixed[i] + F.interpolate(carry, size=mixed[i].shape[-2:],
                                                                        mode="bilinear", align_corners=False)
            carry = F.conv2d(y, getattr(self, f"csm{i}"), padding=1)
            pyramid[i] = carry
        maps = [head(p, temb) for head, p in zip(self.heads, pyramid)]
        if self.patchgan is not None:
            maps.append(self.patchgan(image) if timestep is None else self.patchgan(image, timestep=timestep))
        h = min(m.shape[-2] for m in maps)
        w = min(m.shape[-1] for m in maps)
        return torch.cat([F.adaptive_avg_pool2d(m, (h, w)) if m.shape[-2:] != (h, w) else m for m in maps], dim=-1)


def _random_conv(cout, cin, k, gen):
    """A fixed random convolution kernel, Kaiming-uniform scaled (as PyTorch initialises)."""
    bound = (6 / (cin * k * k)) ** 0.5 / 2 ** 0.5
    return (torch.rand(cout, cin, k, k, generator=gen) * 2 - 1) * bound


def _feature_sides(net, size, count):
    """The side of each feature map the backbone gives a ``size`` x ``size`` image (one pass)."""
    if any(p.is_meta for p in net.parameters()):  # a checkpoint opened for inference: D never runs
        return [max(1, size // 2 ** (i + 2)) for i in range(count)]
    with torch.no_grad():
        return [f.shape[-1] for f in net.features(torch.zeros(1, 3, size, size))][:count]


@hookimpl
def register_discriminators(register) -> None:
    register("projected", Projected,
             help="Projected GAN: frozen pretrained backbone (efficientnet_lite0), fixed random projections, "
                  "a trained head per scale; patchgan: true adds a PatchGAN beside it")
