"""The ResNet generator of Johnson et al. as CycleGAN uses it.

c7s1-ngf, d(2 ngf), d(4 ngf), n_blocks x R(4 ngf), u(2 ngf), u(ngf), c7s1-out, tanh.
With 3 -> 3 channels, ngf 64: 9 blocks have 11,378,179 parameters, 6 blocks 7,837,699.
"""
from torch import nn

from unpaired import hookimpl

from .norms import norm_layer


class ResidualBlock(nn.Module):
    def __init__(self, channels, norm, bias, dropout, padding):
        super().__init__()
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
        return x + self.block(x)


def _pad(mode, size):
    return {"reflect": nn.ReflectionPad2d, "replicate": nn.ReplicationPad2d, "zero": nn.ZeroPad2d}[mode](size)


def _conv_norm_relu(conv, channels, norm):
    return [conv] + ([norm(channels)] if norm else []) + [nn.ReLU(True)]


class ResnetGenerator(nn.Module):
    def __init__(self, in_channels, out_channels, ngf=64, n_blocks=9, norm="instance", dropout=0.0,
                 padding="reflect", n_downsampling=2):
        super().__init__()
        if padding not in ("reflect", "replicate", "zero"):
            raise ValueError(f"padding must be reflect, replicate or zero, not {padding!r}")
        norm, bias = norm_layer(norm)
        layers = [_pad(padding, 3)] + _conv_norm_relu(nn.Conv2d(in_channels, ngf, 7, bias=bias), ngf, norm)
        ch = ngf
        for _ in range(n_downsampling):
            layers += _conv_norm_relu(nn.Conv2d(ch, ch * 2, 3, stride=2, padding=1, bias=bias), ch * 2, norm)
            ch *= 2
        layers += [ResidualBlock(ch, norm, bias, dropout, padding) for _ in range(n_blocks)]
        for _ in range(n_downsampling):
            up = nn.ConvTranspose2d(ch, ch // 2, 3, stride=2, padding=1, output_padding=1, bias=bias)
            layers += _conv_norm_relu(up, ch // 2, norm)
            ch //= 2
        layers += [_pad(padding, 3), nn.Conv2d(ch, out_channels, 7), nn.Tanh()]
        self.model = nn.Sequential(*layers)

    def forward(self, x):
        return self.model(x)


def resnet(in_channels, out_channels, ngf=64, n_blocks=9, norm="instance", dropout=0.0, padding="reflect"):
    """ResNet generator: ``ngf`` base width, ``n_blocks`` residual blocks (9 for 256 px, 6 for
    128 px), ``norm`` instance | batch | none, ``dropout`` in the blocks (0 for CycleGAN),
    ``padding`` reflect | replicate | zero."""
    return ResnetGenerator(in_channels, out_channels, ngf=ngf, n_blocks=n_blocks, norm=norm,
                           dropout=dropout, padding=padding)


@hookimpl
def register_generators(register):
    register("resnet", resnet, help="ResNet generator of Johnson et al. (CycleGAN's default)")
