"""The ResNet generator of Johnson et al. as CycleGAN uses it.

c7s1-ngf, d(2 ngf), d(4 ngf), n_blocks x R(4 ngf), u(2 ngf), u(ngf), c7s1-out, tanh.
With 3 -> 3 channels, ngf 64: 9 blocks have 11,378,179 parameters, 6 blocks 7,837,699.

The upsampling layers u(k) are transposed 3x3 convolutions (stride 2) by default, as in the
reference. ``upsample: resize_conv`` makes each one an x2 resize (nearest or bilinear) then a
3x3 convolution, the usual cure for checkerboard artifacts (Odena et al., "Deconvolution and
Checkerboard Artifacts", Distill 2016); it has the same number of parameters.

``conditioning: [timestep, noise]`` (either or both; unpaired.engine.conditions) makes it a conditioned
generator, called ``G(x, timestep=t, noise=z)`` with z of ``noise_dim`` = 4 ngf, as the UNSB
code conditions its generator: the step's sinusoidal embedding (ngf wide) through a two-layer
MLP to 4 ngf, added per channel after each residual block's first convolution and norm; the
noise through a StyleGAN mapping (pixel norm, 1 + ``noise_mlp`` Linear layers) to a per-channel
``gamma * x + beta`` after that (plugins/conditioning.py). With no conditioning (the default)
the network and its weights' names are exactly the unconditioned ones.
"""
import torch.utils.checkpoint
from torch import nn

from unpaired.api import NOISE, TIMESTEP, UnpairedError, hookimpl, one_of, parse_conditions


from .conditioning import Modulation, NoiseMapping, TimeEmbedding, time_bias
from .norms import norm_layer

PADDINGS = ("reflect", "replicate", "zero")
UPSAMPLES = ("deconv", "resize_conv")
UPSAMPLE_MODES = ("nearest", "bilinear")


class ResidualBlock(nn.Module):
    def __init__(self, channels, norm, bias, dropout, padding, checkpoint=False) -> None:
        super().__init__()
        self.checkpoint = checkpoint
        layers = []
        for i in range(2):
            layers += [_pad(padding, 1), nn.Conv2d(channels, channels, 3, bias=bias)]
            if norm:
                layers.append(norm(channels))
            if i == 0:
                layers.append(nn.ReLU(True))
                if dropout:
                    layers.append(nn.Dropout(dropout))
        self.block = nn.Sequential(*layers)

    def forward(self, x):
        if self.checkpoint and self.training and torch.is_grad_enabled():
            # keep only the block's input; recompute its activations in the backward pass
            return x + torch.utils.checkpoint.checkpoint(self.block, x, use_reentrant=False)
        return x + self.block(x)


class ConditionedBlock(nn.Module):
    """A residual block that takes the step's embedding and the noise's style: pad, conv, norm,
    + a per-channel bias from the step, gamma * x + beta from the style, ReLU, (dropout), pad,
    conv, norm; plus the input."""

    def __init__(self, channels, norm, bias, dropout, padding, time_dim, style_dim, checkpoint=False) -> None:
        super().__init__()
        self.checkpoint = checkpoint
        first = [_pad(padding, 1), nn.Conv2d(channels, channels, 3, bias=bias)] + ([norm(channels)] if norm else [])
        second = [nn.ReLU(True)] + ([nn.Dropout(dropout)] if dropout else [])
        second += [_pad(padding, 1), nn.Conv2d(channels, channels, 3, bias=bias)] + ([norm(channels)] if norm else [])
        self.first, self.second = nn.Sequential(*first), nn.Sequential(*second)
        self.time = nn.Linear(time_dim, channels) if time_dim else None
        if self.time is not None:
            nn.init.zeros_(self.time.bias)
        self.modulation = Modulation(channels, style_dim) if style_dim else None

    def _body(self, x, temb, style):
        h = self.first(x)
        if self.time is not None:
            h = h + time_bias(self.time, temb)
        if self.modulation is not None:
            h = self.modulation(h, style)
        return self.second(h)

    def forward(self, x, temb=None, style=None):
        if self.checkpoint and self.training and torch.is_grad_enabled():
            return x + torch.utils.checkpoint.checkpoint(self._body, x, temb, style, use_reentrant=False)
        return x + self._body(x, temb, style)


def _pad(mode, size):
    return {"reflect": nn.ReflectionPad2d, "replicate": nn.ReplicationPad2d, "zero": nn.ZeroPad2d}[mode](size)


def _conv_norm_relu(conv, channels, norm):
    return [conv] + ([norm(channels)] if norm else []) + [nn.ReLU(True)]


def _upsample(ch_in, ch_out, bias, upsample, mode, padding):
    """The layers that double the resolution and map ch_in -> ch_out channels."""
    if upsample == "deconv":
        return [nn.ConvTranspose2d(ch_in, ch_out, 3, stride=2, padding=1, output_padding=1, bias=bias)]
    resize = nn.Upsample(scale_factor=2, mode=mode, **({"align_corners": False} if mode == "bilinear" else {}))
    return [resize, _pad(padding, 1), nn.Conv2d(ch_in, ch_out, 3, bias=bias)]


def _integer(key, value, low):
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise UnpairedError(f"generator.params.{key}: {value!r} must be an integer >= {low}")


class ResnetGenerator(nn.Module):
    """ResNet generator: ``ngf`` base width, ``n_blocks`` residual blocks (9 for 256 px, 6 for
    128 px), ``norm`` instance | batch | none, ``dropout`` in the blocks (0 for CycleGAN),
    ``padding`` reflect | replicate | zero, ``upsample`` deconv (transposed convolutions, the
    reference's) | resize_conv (x2 resize then a 3x3 convolution: no checkerboard artifacts),
    ``upsample_mode`` nearest | bilinear (the resize of resize_conv), ``checkpoint_blocks``
    (activation checkpointing: the residual blocks' activations are recomputed in the backward
    pass instead of stored — less memory at high resolution, ~30% more generator compute),
    ``conditioning`` [] | [timestep] | [noise] | [timestep, noise] (a conditioned generator, as
    UNSB's; module docstring), ``noise_mlp`` the mapping's extra layers (3, the UNSB code's n_mlp)."""

    test_params = {"ngf": 8, "n_blocks": 2}  # small enough for the contract tests
    conditions_param = "conditioning"  # unpaired.engine.conditions: the param that asks for conditions

    def __init__(self, in_channels, out_channels, ngf=64, n_blocks=9, norm="instance", dropout=0.0,
                 padding="reflect", n_downsampling=2, upsample="deconv", upsample_mode="nearest",
                 checkpoint_blocks=False, conditioning=(), noise_mlp=3) -> None:
        super().__init__()
        _integer("ngf", ngf, 1)
        _integer("n_blocks", n_blocks, 0)
        _integer("noise_mlp", noise_mlp, 0)
        self.conditions = parse_conditions("generator.params.conditioning", conditioning)
        if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0 <= dropout < 1:
            raise UnpairedError(f"generator.params.dropout: {dropout!r} must be a number in [0, 1)")
        one_of("generator.params.padding", padding, PADDINGS)
        one_of("generator.params.upsample", upsample, UPSAMPLES)
        one_of("generator.params.upsample_mode", upsample_mode, UPSAMPLE_MODES)
        norm, bias = norm_layer(norm, "generator.params.norm")
        layers = [_pad(padding, 3)] + _conv_norm_relu(nn.Conv2d(in_channels, ngf, 7, bias=bias), ngf, norm)
        ch = ngf
        for _ in range(n_downsampling):
            layers += _conv_norm_relu(nn.Conv2d(ch, ch * 2, 3, stride=2, padding=1, bias=bias), ch * 2, norm)
            ch *= 2
        if self.conditions:
            width = 4 * ngf  # the UNSB code's: time embedding and noise 4 ngf wide
            timed, noisy = TIMESTEP in self.conditions, NOISE in self.conditions
            self.time_embed = TimeEmbedding(ngf, width, final_act=True) if timed else None
            self.noise_map = NoiseMapping(width, noise_mlp) if noisy else None
            if noisy:
                self.noise_dim = width
            layers += [ConditionedBlock(ch, norm, bias, dropout, padding, width if timed else 0, width if noisy else 0,
                                        checkpoint_blocks) for _ in range(n_blocks)]
        else:
            layers += [ResidualBlock(ch, norm, bias, dropout, padding, checkpoint_blocks) for _ in range(n_blocks)]
        for _ in range(n_downsampling):
            up = _upsample(ch, ch // 2, bias, upsample, upsample_mode, padding)
            layers += up[:-1] + _conv_norm_relu(up[-1], ch // 2, norm)
            ch //= 2
        layers += [_pad(padding, 3), nn.Conv2d(ch, out_channels, 7), nn.Tanh()]
        self.model = nn.Sequential(*layers)
        # encoder layers by name -> index in self.model whose output is that activation:
        # "input" (the padded input), "down1".. (the strided convolutions' outputs, before their
        # norm), "block1".. (the residual blocks' outputs). CUT's PatchNCE uses
        # input, down1, down2, block1, block5 (its indices 0, 4, 8, 12, 16).
        self.feature_index = {"input": 0}
        downs = [i for i, m in enumerate(layers) if isinstance(m, nn.Conv2d) and m.stride == (2, 2)]
        blocks = [i for i, m in enumerate(layers) if isinstance(m, (ResidualBlock, ConditionedBlock))]
        self.feature_index.update({f"down{k + 1}": i for k, i in enumerate(downs)})
        self.feature_index.update({f"block{k + 1}": i for k, i in enumerate(blocks)})

    def forward(self, x, timestep=None, noise=None):
        if not self.conditions:
            self._unconditioned(timestep, noise)
            return self.model(x)
        temb, style = self._embed(x, timestep, noise)
        for layer in self.model:
            x = layer(x, temb, style) if isinstance(layer, ConditionedBlock) else layer(x)
        return x

    def _unconditioned(self, timestep, noise):
        if timestep is not None or noise is not None:
            raise UnpairedError("generator.params.conditioning: this resnet takes no timestep or noise; "
                                "set conditioning: [timestep, noise]")

    def _embed(self, x, timestep, noise):
        """(the step's embedding or None, the noise's style or None); step 0 and zero noise by default."""
        temb = self.time_embed(timestep, x.device) if self.time_embed is not None else None
        style = None
        if self.noise_map is not None:
            if noise is None:
                noise = x.new_zeros(x.shape[0], self.noise_dim)
            elif noise.dim() != 2 or noise.shape[1] != self.noise_dim:
                raise UnpairedError(f"resnet: noise of shape {tuple(noise.shape)}; it takes (N, {self.noise_dim})")
            style = self.noise_map(noise)
        return temb, style

    def features(self, x, layers, timestep=None, noise=None):
        """The encoder's activations at the named ``layers`` (see ``feature_index``), in the
        order asked; the pass stops after the deepest one. A conditioned resnet takes the step
        and the noise as its forward does."""
        unknown = [name for name in layers if name not in self.feature_index]
        if unknown:
            raise UnpairedError(f"resnet has no feature layer {', '.join(map(repr, unknown))}; "
                                f"its layers: {', '.join(self.feature_index)}")
        temb = style = None
        if self.conditions:
            temb, style = self._embed(x, timestep, noise)
        else:
            self._unconditioned(timestep, noise)
        wanted = {self.feature_index[name]: name for name in layers}
        found = {}
        for i, layer in enumerate(self.model):
            x = layer(x, temb, style) if isinstance(layer, ConditionedBlock) else layer(x)
            if i in wanted:
                found[wanted[i]] = x
                if len(found) == len(wanted):
                    break
        return [found[name] for name in layers]


resnet = ResnetGenerator  # the name of 0.1.0's factory function, for code that imports it


@hookimpl
def register_generators(register) -> None:
    register("resnet", ResnetGenerator, help="ResNet generator of Johnson et al. (CycleGAN's default)")
