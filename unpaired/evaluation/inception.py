"""The FID Inception-v3 architecture (TensorFlow's 2015 graph, as pytorch-fid ports it), built
from torchvision's Inception blocks. Imported only when the ``inception`` extractor is built, so a
broken torchvision stops that alone, with one line (unpaired.evaluation.vision)."""
from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from .vision import require_torchvision

torchvision = require_torchvision()
if TYPE_CHECKING:
    from torchvision.models.inception import InceptionA, InceptionC, InceptionE
else:
    InceptionA = torchvision.models.inception.InceptionA
    InceptionC = torchvision.models.inception.InceptionC
    InceptionE = torchvision.models.inception.InceptionE


def _tf_avg_pool(x: torch.Tensor) -> torch.Tensor:
    # TensorFlow's 3x3 average pool averages over the real pixels only, ignoring the padding.
    return F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)


class _FIDInceptionA(InceptionA):
    """torchvision's InceptionA with TensorFlow's padding-free average pool."""

    def _forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return [
            self.branch1x1(x),
            self.branch5x5_2(self.branch5x5_1(x)),
            self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
            self.branch_pool(_tf_avg_pool(x)),
        ]


class _FIDInceptionC(InceptionC):
    """torchvision's InceptionC with TensorFlow's padding-free average pool."""

    def _forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        seven = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        double = self.branch7x7dbl_1(x)
        for layer in (self.branch7x7dbl_2, self.branch7x7dbl_3, self.branch7x7dbl_4, self.branch7x7dbl_5):
            double = layer(double)
        return [self.branch1x1(x), seven, double, self.branch_pool(_tf_avg_pool(x))]


class _FIDInceptionE(InceptionE):
    """torchvision's InceptionE with the TF graph's pooling: a padding-free average pool
    in Mixed_7b, and a 3x3 *max* pool in Mixed_7c (a quirk of the 2015 graph)."""

    def __init__(self, in_channels: int, pool: str) -> None:
        super().__init__(in_channels)
        if pool not in ("avg", "max"):
            raise ValueError(f"pool must be 'avg' or 'max', not {pool!r}")
        self.pool = pool

    def _forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        three = self.branch3x3_1(x)
        three = torch.cat([self.branch3x3_2a(three), self.branch3x3_2b(three)], 1)
        double = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        double = torch.cat([self.branch3x3dbl_3a(double), self.branch3x3dbl_3b(double)], 1)
        if self.pool == "max":
            pooled = F.max_pool2d(x, kernel_size=3, stride=1, padding=1)
        else:
            pooled = _tf_avg_pool(x)
        return [self.branch1x1(x), three, double, self.branch_pool(pooled)]


def fid_inception_v3() -> torch.nn.Module:
    """The FID Inception architecture with untrained weights: torchvision's Inception-v3
    with 1008 classes (the TF graph's), no auxiliary head, and the TF pooling in Mixed_5b-d,
    Mixed_6b-e and Mixed_7b-c. Its state dict has the keys of pytorch-fid's weights file."""
    net = torchvision.models.inception_v3(weights=None, aux_logits=False, init_weights=False, num_classes=1008)
    net.Mixed_5b = _FIDInceptionA(192, pool_features=32)
    net.Mixed_5c = _FIDInceptionA(256, pool_features=64)
    net.Mixed_5d = _FIDInceptionA(288, pool_features=64)
    net.Mixed_6b = _FIDInceptionC(768, channels_7x7=128)
    net.Mixed_6c = _FIDInceptionC(768, channels_7x7=160)
    net.Mixed_6d = _FIDInceptionC(768, channels_7x7=160)
    net.Mixed_6e = _FIDInceptionC(768, channels_7x7=192)
    net.Mixed_7b = _FIDInceptionE(1280, pool="avg")
    net.Mixed_7c = _FIDInceptionE(2048, pool="max")
    return net
