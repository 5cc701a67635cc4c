"""PatchGAN discriminators: fully convolutional nets whose logits judge overlapping patches.

``patchgan``: defaults (ndf 64, 3 layers) give the 70x70 PatchGAN: 2,764,737 parameters, a
256x256 image -> 30x30 logits. ``multiscale_patchgan``: several PatchGANs, each judging the
image at half the resolution of the previous one (pix2pixHD's multi-scale discriminator).

``conditioning: [timestep]`` (unpaired.engine.conditions) makes either a discriminator of a sampler's
step, ``D(x, timestep=t)``, as the UNSB code conditions its discriminators: the step's sinusoidal
embedding (4 ndf wide) through a two-layer MLP, and a per-channel bias from it added after each
strided or middle convolution, before its norm (plugins/conditioning.py). Without conditioning
(the default) the network and its weights' names are exactly the unconditioned ones.
"""
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm as _spectral_norm

from unpaired.api import TIMESTEP, UnpairedError, hookimpl, parse_conditions

from .conditioning import TimeEmbedding, time_bias
from .norms import norm_layer


MAX_LAYERS = 10  # 11 stride-2 layers would need images of over 4,000 px for a 1x1 logit map


def check_widths(ndf, n_layers):
    if isinstance(ndf, bool) or not isinstance(ndf, int) or ndf < 1:
        raise UnpairedError(f"discriminator.params.ndf: {ndf!r} must be an integer >= 1")
    if isinstance(n_layers, bool) or not isinstance(n_layers, int) or not 1 <= n_layers <= MAX_LAYERS:
        raise UnpairedError(f"discriminator.params.n_layers: {n_layers!r} must be an integer from 1 to {MAX_LAYERS}")


class PatchGAN(nn.Module):
    """PatchGAN: ``ndf`` base width, ``n_layers`` strided layers (3 gives 70x70 patches),
    ``norm`` instance | batch | none, ``spectral_norm`` wraps every convolution in spectral
    normalisation (Miyato et al. 2018; usually with ``norm: none``). With spectral_norm the
    weights keep PyTorch's default initialisation: the normalisation fixes their scale.
    ``conditioning`` [] | [timestep]: a discriminator of a sampler's step (module docstring)."""

    test_params = {"ndf": 8, "n_layers": 2}  # small enough for the contract tests
    conditions_param = "conditioning"  # unpaired.engine.conditions: the param that asks for conditions

    def __init__(self, in_channels, ndf=64, n_layers=3, norm="instance", spectral_norm=False, conditioning=()) -> None:
        super().__init__()
        check_widths(ndf, n_layers)
        self.conditions = parse_conditions("discriminator.params.conditioning", conditioning, (TIMESTEP,))
        norm, bias = norm_layer(norm, "discriminator.params.norm")
        sn = _spectral_norm if spectral_norm else (lambda conv: conv)
        layers = [sn(nn.Conv2d(in_channels, ndf, 4, stride=2, padding=1)), nn.LeakyReLU(0.2, True)]
        ch = ndf
        for n in range(1, n_layers + 1):
            out = ndf * min(2 ** n, 8)
            stride = 2 if n < n_layers else 1
            layers.append(sn(nn.Conv2d(ch, out, 4, stride=stride, padding=1, bias=bias)))
            if norm:
                layers.append(norm(out))
            layers.append(nn.LeakyReLU(0.2, True))
            ch = out
        layers.append(sn(nn.Conv2d(ch, 1, 4, stride=1, padding=1)))
        self.model = nn.Sequential(*layers)
        self.n_layers = n_layers
        if self.conditions:  # a bias from the step after each convolution but the first and the last
            convs = [(i, m) for i, m in enumerate(layers) if isinstance(m, nn.Conv2d)][1:-1]
            self.timed = {i: k for k, (i, _) in enumerate(convs)}  # index in model -> its Linear
            self.time_embed = TimeEmbedding(4 * ndf, 4 * ndf, final_act=False)
            linears = [nn.Linear(4 * ndf, conv.out_channels) for _, conv in convs]
            for linear in linears:
                nn.init.zeros_(linear.bias)
            self.time_bias = nn.ModuleList(linears)

    def forward(self, x, timestep=None):
        if not self.conditions:
            if timestep is not None:
                raise UnpairedError("discriminator.params.conditioning: this patchgan takes no timestep; "
                                    "set conditioning: [timestep]")
            return self.model(x)
        temb = self.time_embed(timestep, x.device)
        for i, layer in enumerate(self.model):
            x = layer(x)
            if i in self.timed:
                x = x + time_bias(self.time_bias[self.timed[i]], temb)
        return x


def patchgan_output_size(size, n_layers):
    """The side of the logit map a PatchGAN with ``n_layers`` makes of an image side ``size``."""
    for _ in range(n_layers):  # the first conv and n_layers - 1 more with stride 2
        size = (size + 2 - 4) // 2 + 1
    return size - 2  # two stride-1 4x4 convs with padding 1


class MultiScalePatchGAN(nn.Module):
    """Multi-scale PatchGAN (pix2pixHD): ``num_scales`` PatchGANs (2 or 3), with ``ndf``,
    ``n_layers``, ``norm``, ``spectral_norm`` as for patchgan; scale k judges the image average-pooled k times by x2
    (3x3 window, stride 2, padding not counted). The contract asks for one tensor, so each
    scale's logit map is nearest-upsampled to the finest map's size (h, w) and the maps are
    concatenated along the width: (N, 1, h, num_scales * w). Every scale then holds the same
    number of logits, so it weighs equally in the adversarial losses, which average over the map.
    ``conditioning`` [] | [timestep]: every scale takes the step (as patchgan's).
    """

    test_params = {"ndf": 8, "n_layers": 2}  # small enough for the contract tests
    conditions_param = "conditioning"

    def __init__(self, in_channels, num_scales=2, ndf=64, n_layers=3, norm="instance", spectral_norm=False,
                 conditioning=()) -> None:
        super().__init__()
        if not isinstance(num_scales, int) or num_scales < 1:
            raise UnpairedError(f"discriminator.params.num_scales: {num_scales!r} must be a positive integer "
                                "(2 or 3 usually)")
        self.scales = nn.ModuleList(
            PatchGAN(in_channels, ndf=ndf, n_layers=n_layers, norm=norm, spectral_norm=spectral_norm,
                     conditioning=conditioning)
            for _ in range(num_scales)
        )
        self.n_layers = n_layers
        self.conditions = self.scales[0].conditions

    def forward(self, x, timestep=None):
        self._check_size(x)
        maps = []
        for k, net in enumerate(self.scales):
            if k:
                x = F.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False)
            maps.append(net(x) if timestep is None else net(x, timestep=timestep))
        h, w = maps[0].shape[-2:]
        maps = [maps[0]] + [F.interpolate(m, size=(h, w), mode="nearest") for m in maps[1:]]
        return torch.cat(maps, dim=-1)

    def _check_size(self, x):
        side = min(x.shape[-2:])
        for _ in range(len(self.scales) - 1):
            side = (side + 1) // 2
        if patchgan_output_size(side, self.n_layers) < 1:
            raise UnpairedError(
                f"discriminator.params: multiscale_patchgan with num_scales={len(self.scales)} and "
                f"n_layers={self.n_layers} sees the {x.shape[-2]}x{x.shape[-1]} images at {side} px at its "
                "coarsest scale, too small for a logit map; lower num_scales or n_layers, or use larger crops")


patchgan, multiscale_patchgan = PatchGAN, MultiScalePatchGAN  # 0.1.0's factory names, for imports


@hookimpl
def register_discriminators(register) -> None:
    register("patchgan", PatchGAN, help="70x70 PatchGAN (n_layers=3) of pix2pix/CycleGAN")
    register("multiscale_patchgan", MultiScalePatchGAN,
             help="PatchGANs at 2-3 scales (pix2pixHD); logit maps upsampled and joined along the width")
