"""The PatchGAN discriminator: a fully convolutional net whose logits judge overlapping
patches. Defaults (ndf 64, 3 layers) give the 70x70 PatchGAN: 2,764,737 parameters, a
256x256 image -> 30x30 logits.
"""
from torch import nn

from unpaired import hookimpl

from .norms import norm_layer


class PatchGAN(nn.Module):
    def __init__(self, in_channels, ndf=64, n_layers=3, norm="instance"):
        super().__init__()
        norm, bias = norm_layer(norm)
        layers = [nn.Conv2d(in_channels, ndf, 4, stride=2, padding=1), nn.LeakyReLU(0.2, True)]
        ch = ndf
        for n in range(1, n_layers + 1):
            out = ndf * min(2 ** n, 8)
            stride = 2 if n < n_layers else 1
            layers.append(nn.Conv2d(ch, out, 4, stride=stride, padding=1, bias=bias))
            if norm:
                layers.append(norm(out))
            layers.append(nn.LeakyReLU(0.2, True))
            ch = out
        layers.append(nn.Conv2d(ch, 1, 4, stride=1, padding=1))
        self.model = nn.Sequential(*layers)

    def forward(self, x):
        return self.model(x)


def patchgan(in_channels, ndf=64, n_layers=3, norm="instance"):
    """PatchGAN: ``ndf`` base width, ``n_layers`` strided layers (3 gives 70x70 patches),
    ``norm`` instance | batch | none."""
    return PatchGAN(in_channels, ndf=ndf, n_layers=n_layers, norm=norm)


@hookimpl
def register_discriminators(register):
    register("patchgan", patchgan, help="70x70 PatchGAN (n_layers=3) of pix2pix/CycleGAN")
