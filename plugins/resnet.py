"""The ResNet generator of Johnson et al. as CycleGAN uses it.

c7s1-ngf, d(2 ngf), d(4 ngf), n_blocks x R(4 ngf), u(2 ngf), u(ngf), c7s1-out, tanh.
With 3 -> 3 channels, ngf 64: 9 blocks have 11,378,179 parameters, 6 blocks 7,837,699.

The upsampling layers u(k) are transposed 3x3 convolutions (stride 2) by default, as in the
reference. ``upsample: resize_conv`` makes each one an x2 resize (nearest or bilinear) then a
3x3 convolution, the usual cure for checkerboard artifacts (Odena et al., "Deconvolution and
Checkerboard Artifacts", Distill 2016); it has the same number of parameters.
"""
import torch.utils.checkpoint
from torch import nn

from unpaired import hookimpl
from unpaired.errors import UnpairedError, one_of

from .norms import norm_layer

PADDINGS = ("reflect", "replicate", "zero")
UPSAMPLES = ("deconv", "resize_conv")
UPSAMPLE_MODES = ("nearest", "bilinear")


class ResidualBlock(nn.Module):
    def __init__(self, channels, norm, bias, dropout, padding, checkpoint=False):
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
    pass instead of stored — less memory at high resolution, ~30% more generator compute)."""

    test_params = {"ngf": 8, "n_blocks": 2}  # small enough for the contract tests

    def __init__(self, in_channels, out_channels, ngf=64, n_blocks=9, norm="instance", dropout=0.0,
                 padding="reflect", n_downsampling=2, upsample="deconv", upsample_mode="nearest",
                 checkpoint_blocks=False):
        super().__init__()
        _integer("ngf", ngf, 1)
        _integer("n_blocks", n_blocks, 0)
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
        blocks = [i for i, m in enumerate(layers) if isinstance(m, ResidualBlock)]
        self.feature_index.update({f"down{k + 1}": i for k, i in enumerate(downs)})
        self.feature_index.update({f"block{k + 1}": i for k, i in enumerate(blocks)})

    def forward(self, x):
        return self.model(x)

    def features(self, x, layers):
        """The encoder's activations at the named ``layers`` (see ``feature_index``), in the
        order asked; the pass stops after the deepest one."""
        unknown = [name for name in layers if name not in self.feature_index]
        if unknown:
            raise UnpairedError(f"resnet has no feature layer {', '.join(map(repr, unknown))}; "
                                f"its layers: {', '.join(self.feature_index)}")
        wanted = {self.feature_index[name]: name for name in layers}
        found = {}
        for i, layer in enumerate(self.model):
            x = layer(x)
            if i in wanted:
                found[wanted[i]] = x
                if len(found) == len(wanted):
                    break
        return [found[name] for name in layers]


resnet = ResnetGenerator  # the name of 0.1.0's factory function, for code that imports it


@hookimpl
def register_generators(register):
    register("resnet", ResnetGenerator, help="ResNet generator of Johnson et al. (CycleGAN's default)")
