"""Building blocks of the built-in networks' conditioning (unpaired.engine.conditions): a sampler's step
and a noise vector as inputs of ``resnet`` and ``patchgan``, the way the UNSB code conditions its
networks (Kim et al., ICLR 2024; github.com/cyclomon/UNSB, models/ncsn_networks.py — the facts
are theirs, the code is ours):

* :func:`timestep_embedding`: the sinusoidal embedding of the integer step (as in DDPM/NCSN++,
  ``max_positions`` 10000): sines then cosines of ``t / 10000 ** (k / (half - 1))``.
* :class:`TimeEmbedding`: that embedding through a two-layer MLP with LeakyReLU(0.2) (biases
  start at zero); the generator's ends with a LeakyReLU too, the discriminator's does not.
* :class:`NoiseMapping`: StyleGAN's mapping of the noise vector: pixel norm, then
  ``1 + layers`` Linear + LeakyReLU(0.2) layers.
* :class:`Modulation`: ``gamma * x + beta`` per channel from a Linear of the mapped noise
  (its bias starts at gamma 1, beta 0; note that ``train.init`` other than ``none`` zeroes every
  Linear bias afterwards, as the authors' ``init_weights`` does to theirs).
"""
import math

import torch
from torch import nn


def timestep_embedding(t, dim, device=None, max_positions=10000):
    """(N, dim) — or (1, dim) for an int ``t`` — sinusoidal embedding of integer steps ``t``."""
    if not torch.is_tensor(t):
        t = torch.tensor([float(t)], device=device)
    t = t.to(device=device, dtype=torch.float32).reshape(-1)
    half = dim // 2
    rate = math.log(max_positions) / max(half - 1, 1)
    freqs = torch.exp(torch.arange(half, device=t.device, dtype=torch.float32) * -rate)
    angles = t[:, None] * freqs[None, :]
    emb = torch.cat([torch.sin(angles), torch.cos(angles)], dim=1)
    if dim % 2:
        emb = nn.functional.pad(emb, (0, 1))
    return emb


class TimeEmbedding(nn.Module):
    """The step ``t`` -> a (N or 1, ``out``) vector: sinusoidal embedding of ``dim``, then
    Linear(dim, out), LeakyReLU(0.2), Linear(out, out) (and a last LeakyReLU with ``final_act``)."""

    def __init__(self, dim, out, final_act) -> None:
        super().__init__()
        self.dim = dim
        layers = [nn.Linear(dim, out), nn.LeakyReLU(0.2), nn.Linear(out, out)]
        if final_act:
            layers.append(nn.LeakyReLU(0.2))
        self.mlp = nn.Sequential(*layers)
        for m in self.mlp:
            if isinstance(m, nn.Linear):
                nn.init.zeros_(m.bias)

    def forward(self, t, device):
        return self.mlp(timestep_embedding(0 if t is None else t, self.dim, device))


class PixelNorm(nn.Module):
    def forward(self, z):
        return z * torch.rsqrt(z.pow(2).mean(dim=1, keepdim=True) + 1e-8)


class NoiseMapping(nn.Module):
    """The noise vector (N, dim) -> its style (N, dim): pixel norm, Linear + LeakyReLU(0.2), then
    ``layers`` more Linear + LeakyReLU(0.2)."""

    def __init__(self, dim, layers) -> None:
        super().__init__()
        body = [PixelNorm(), nn.Linear(dim, dim), nn.LeakyReLU(0.2)]
        for _ in range(layers):
            body += [nn.Linear(dim, dim), nn.LeakyReLU(0.2)]
        self.mlp = nn.Sequential(*body)

    def forward(self, z):
        return self.mlp(z)


class Modulation(nn.Module):
    """``gamma * x + beta``, gamma and beta per channel from the style (N, style_dim)."""

    def __init__(self, channels, style_dim) -> None:
        super().__init__()
        self.affine = nn.Linear(style_dim, 2 * channels)
        with torch.no_grad():
            self.affine.bias[:channels] = 1.0
            self.affine.bias[channels:] = 0.0

    def forward(self, x, style):
        gamma, beta = self.affine(style)[:, :, None, None].chunk(2, dim=1)
        return gamma * x + beta


def time_bias(linear, temb):
    """A per-channel bias from the time embedding, broadcast over the image."""
    return linear(temb)[:, :, None, None]
