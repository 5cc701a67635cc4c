"""The U-Net generator of pix2pix (Isola et al. 2017), written from its description.

``num_downs`` stride-2 4x4 convolutions take the image down to 1/2**num_downs of its size
(1x1 for 256 px and num_downs 8), and as many stride-2 4x4 transposed convolutions take it
back up; each up-step also sees the down-step of the same size (skip connections, by
concatenation). Widths: ngf, 2 ngf, 4 ngf, then 8 ngf. LeakyReLU(0.2) before each down
convolution, ReLU before each up convolution, tanh at the end; no norm on the outermost
down step, the innermost down step or the output.

Encoder features by name (``features(x, layers)``, the optional generator capability that
CUT's PatchNCE uses): ``"input"`` (the image itself) and ``"down1"`` .. ``"downN"`` (N =
num_downs: each down-step's output, its strided convolution then its norm; ``down1`` is at
half the image size with ngf channels, ``downN`` the bottleneck).
"""
import torch
from torch import nn

from unpaired.api import UnpairedError

NORMS = {
    "instance": lambda ch: nn.InstanceNorm2d(ch, affine=False, track_running_stats=False),
    "batch": lambda ch: nn.BatchNorm2d(ch),
    "none": None,
}


def _width(ngf, level):
    return ngf * min(2 ** level, 8)


class UNet(nn.Module):
    def __init__(self, in_channels, out_channels, ngf, num_downs, norm, dropout):
        super().__init__()
        self.num_downs = num_downs
        self.size_multiple = 2 ** num_downs  # unpaired translate pads images up to it
        self.feature_names = ("input", *(f"down{k + 1}" for k in range(num_downs)))
        make_norm = NORMS[norm]
        bias = norm != "batch"  # batch norm brings its own shift
        inner = num_downs - 1
        self.downs = nn.ModuleList()
        for level in range(num_downs):
            cin = in_channels if level == 0 else _width(ngf, level - 1)
            cout = _width(ngf, level)
            layers = [] if level == 0 else [nn.LeakyReLU(0.2, True)]
            layers.append(nn.Conv2d(cin, cout, 4, stride=2, padding=1, bias=bias))
            if make_norm and 0 < level < inner:
                layers.append(make_norm(cout))
            self.downs.append(nn.Sequential(*layers))
        self.ups = nn.ModuleList()  # innermost first
        for level in reversed(range(num_downs)):
            cin = _width(ngf, level) * (1 if level == inner else 2)  # 2x: the skip is concatenated
            cout = out_channels if level == 0 else _width(ngf, level - 1)
            layers = [nn.ReLU(True), nn.ConvTranspose2d(cin, cout, 4, stride=2, padding=1, bias=bias or level == 0)]
            if level == 0:
                layers.append(nn.Tanh())
            else:
                if make_norm:
                    layers.append(make_norm(cout))
                if dropout and cout == 8 * ngf and level < inner:  # pix2pix: the deep 8-ngf levels
                    layers.append(nn.Dropout(dropout))
            self.ups.append(nn.Sequential(*layers))

    def forward(self, x):
        multiple = self.size_multiple
        if x.shape[-2] % multiple or x.shape[-1] % multiple:
            raise UnpairedError(
                f"generator unet: images of {x.shape[-2]}x{x.shape[-1]} px, but with num_downs={self.num_downs} "
                f"their sides must be multiples of {multiple}; set generator.params.num_downs lower or the "
                f"crop size to a multiple of {multiple}")
        skips = []
        for down in self.downs:
            x = down(x)
            skips.append(x)
        x = self.ups[0](skips.pop())
        for up in self.ups[1:]:
            x = up(torch.cat([x, skips.pop()], dim=1))
        return x

    def features(self, x, layers):
        """The encoder's activations at the named ``layers`` (``feature_names``: input, down1 ..
        downN), in the order asked; the pass stops after the deepest one. Image sides need to be
        at least 2**k for down<k>, not multiples of 2**num_downs: no up-step runs."""
        unknown = [name for name in layers if name not in self.feature_names]
        if unknown:
            raise UnpairedError(f"unet has no feature layer {', '.join(map(repr, unknown))}; "
                                f"its layers: {', '.join(self.feature_names)}")
        deepest = max(self.feature_names.index(name) for name in layers) if layers else 0
        if min(x.shape[-2:]) < 2 ** deepest:
            raise UnpairedError(f"unet: images of {x.shape[-2]}x{x.shape[-1]} px are too small for feature layer "
                                f"down{deepest} (sides of at least {2 ** deepest} px)")
        found = [x]
        for level, down in enumerate(self.downs[:deepest]):
            # the down-steps after the first begin with an in-place LeakyReLU: give them a copy,
            # so that each returned activation is the step's own output
            found.append(down(found[-1] if level == 0 else found[-1].clone()))
        return [found[self.feature_names.index(name)] for name in layers]


def unet(in_channels, out_channels, ngf=64, num_downs=8, norm="instance", dropout=0.0):
    """pix2pix U-Net: ``ngf`` base width, ``num_downs`` down-steps (8 for 256 px, 7 for 128 px;
    image sides must be multiples of 2**num_downs, so use 6 for 64 px crops), ``norm``
    instance | batch | none, ``dropout`` after the deep up-steps (pix2pix uses 0.5; 0 for CycleGAN)."""
    if not isinstance(num_downs, int) or num_downs < 1:
        raise UnpairedError(f"generator.params.num_downs: {num_downs!r} must be an integer >= 1")
    if norm not in NORMS:
        raise UnpairedError(f"generator.params.norm: {norm!r} is not one of {', '.join(NORMS)}")
    if not 0 <= dropout < 1:
        raise UnpairedError(f"generator.params.dropout: {dropout!r} must be in [0, 1)")
    return UNet(in_channels, out_channels, ngf, num_downs, norm, dropout)


# small params for contract tests (unpaired's tests/test_contract.py reads them): 2 down-steps
# take any side that is a multiple of 4
unet.test_params = {"ngf": 8, "num_downs": 2}
