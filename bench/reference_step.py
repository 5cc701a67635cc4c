"""A reference-equivalent CycleGAN training step, written plainly and independent of
the ``unpaired`` package: the yardstick for bench/train_step.py.

What it does (the facts of /work/shared/REFERENCE.md, written from scratch):
ResNet generator (reflection padding, instance norm without affine or running stats,
transposed-conv upsampling, tanh), 70x70 PatchGAN, weights N(0, 0.02) and biases 0,
LSGAN (default) or BCE-with-logits adversarial loss, L1 cycle x10 and identity x5, a
history pool of 50 fakes per direction, Adam 2e-4 (0.5, 0.999) for each pair of nets,
eager fp32 NCHW, six separate generator calls per step
(G_AB(a), G_BA(fake_b), G_BA(b), G_AB(fake_a), G_BA(a), G_AB(b)),
then the generator step with the discriminators frozen, then the discriminator step.

    python bench/reference_step.py --size 128 --blocks 6 --repeats 5
"""
import argparse
import random
import statistics
import time

import torch
from torch import nn
import torch.nn.functional as F


def _norm(ch):
    return nn.InstanceNorm2d(ch, affine=False, track_running_stats=False)


class ResBlock(nn.Module):
    def __init__(self, ch):
        super().__init__()
        self.body = nn.Sequential(
            nn.ReflectionPad2d(1), nn.Conv2d(ch, ch, 3), _norm(ch), nn.ReLU(True),
            nn.ReflectionPad2d(1), nn.Conv2d(ch, ch, 3), _norm(ch),
        )

    def forward(self, x):
        return x + self.body(x)


def resnet_generator(cin=3, cout=3, ngf=64, n_blocks=9):
    layers = [nn.ReflectionPad2d(3), nn.Conv2d(cin, ngf, 7), _norm(ngf), nn.ReLU(True)]
    ch = ngf
    for _ in range(2):
        layers += [nn.Conv2d(ch, ch * 2, 3, stride=2, padding=1), _norm(ch * 2), nn.ReLU(True)]
        ch *= 2
    layers += [ResBlock(ch) for _ in range(n_blocks)]
    for _ in range(2):
        layers += [nn.ConvTranspose2d(ch, ch // 2, 3, stride=2, padding=1, output_padding=1),
                   _norm(ch // 2), nn.ReLU(True)]
        ch //= 2
    layers += [nn.ReflectionPad2d(3), nn.Conv2d(ch, cout, 7), nn.Tanh()]
    return nn.Sequential(*layers)


def patchgan(cin=3, ndf=64, n_layers=3):
    layers = [nn.Conv2d(cin, ndf, 4, 2, 1), nn.LeakyReLU(0.2, True)]
    ch = ndf
    for n in range(1, n_layers + 1):
        out = ndf * min(2 ** n, 8)
        layers += [nn.Conv2d(ch, out, 4, 2 if n < n_layers else 1, 1), _norm(out), nn.LeakyReLU(0.2, True)]
        ch = out
    layers.append(nn.Conv2d(ch, 1, 4, 1, 1))
    return nn.Sequential(*layers)


def init_normal(net, gain=0.02):
    for m in net.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, gain)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    return net


class HistoryPool:
    """50 fakes; once full, each new fake is swapped with a stored one with p = 0.5."""

    def __init__(self, size=50, seed=0):
        self.size, self.images, self.rng = size, [], random.Random(seed)

    def query(self, fakes):
        out = []
        for img in fakes.detach():
            img = img.unsqueeze(0)
            if len(self.images) < self.size:
                self.images.append(img)
                out.append(img)
            elif self.rng.random() < 0.5:
                k = self.rng.randrange(self.size)
                out.append(self.images[k].clone())
                self.images[k] = img
            else:
                out.append(img)
        return torch.cat(out, 0)


class ReferenceStep:
    """``ReferenceStep(size, n_blocks, device).step(a, b)``: one reference training step."""

    def __init__(self, size=256, n_blocks=9, device="cpu", gan="lsgan", seed=0):
        torch.manual_seed(seed)
        self.size, self.device = size, torch.device(device)
        self.g_ab = init_normal(resnet_generator(n_blocks=n_blocks)).to(self.device)
        self.g_ba = init_normal(resnet_generator(n_blocks=n_blocks)).to(self.device)
        self.d_a = init_normal(patchgan()).to(self.device)
        self.d_b = init_normal(patchgan()).to(self.device)
        self.gan = gan
        self.opt_g = torch.optim.Adam(list(self.g_ab.parameters()) + list(self.g_ba.parameters()),
                                      lr=2e-4, betas=(0.5, 0.999))
        self.opt_d = torch.optim.Adam(list(self.d_a.parameters()) + list(self.d_b.parameters()),
                                      lr=2e-4, betas=(0.5, 0.999))
        self.pool_a, self.pool_b = HistoryPool(50, seed + 1), HistoryPool(50, seed + 2)
        self.lambda_cyc, self.lambda_idt = 10.0, 0.5

    def gan_loss(self, logits, real):
        target = torch.ones_like(logits) if real else torch.zeros_like(logits)
        if self.gan == "lsgan":
            return F.mse_loss(logits, target)
        return F.binary_cross_entropy_with_logits(logits, target)

    @staticmethod
    def _requires_grad(nets, flag):
        for net in nets:
            for p in net.parameters():
                p.requires_grad = flag

    def step(self, a, b):
        # forward (the reference's forward(): the two cycles)
        fake_b = self.g_ab(a)
        rec_a = self.g_ba(fake_b)
        fake_a = self.g_ba(b)
        rec_b = self.g_ab(fake_a)
        # generators, discriminators frozen
        self._requires_grad([self.d_a, self.d_b], False)
        self.opt_g.zero_grad()
        idt_a = self.g_ab(b)  # the reference's idt_A = netG_A(real_B)
        idt_b = self.g_ba(a)
        lc, li = self.lambda_cyc, self.lambda_idt
        loss_idt = F.l1_loss(idt_a, b) * lc * li + F.l1_loss(idt_b, a) * lc * li
        loss_g = (self.gan_loss(self.d_b(fake_b), True) + self.gan_loss(self.d_a(fake_a), True)
                  + F.l1_loss(rec_a, a) * lc + F.l1_loss(rec_b, b) * lc + loss_idt)
        loss_g.backward()
        self.opt_g.step()
        # discriminators
        self._requires_grad([self.d_a, self.d_b], True)
        self.opt_d.zero_grad()
        fb = self.pool_b.query(fake_b)
        loss_db = (self.gan_loss(self.d_b(b), True) + self.gan_loss(self.d_b(fb.detach()), False)) * 0.5
        loss_db.backward()
        fa = self.pool_a.query(fake_a)
        loss_da = (self.gan_loss(self.d_a(a), True) + self.gan_loss(self.d_a(fa.detach()), False)) * 0.5
        loss_da.backward()
        self.opt_d.step()
        return loss_g.detach(), (loss_da + loss_db).detach()


def _sync(device):
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--blocks", type=int, default=6)
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--device", default="cpu")
    p.add_argument("--gan", default="lsgan", choices=("lsgan", "bce"))
    args = p.parse_args()
    ref = ReferenceStep(args.size, args.blocks, args.device, gan=args.gan)
    g = torch.Generator().manual_seed(1)
    a = (torch.rand(args.batch, 3, args.size, args.size, generator=g) * 2 - 1).to(args.device)
    b = (torch.rand(args.batch, 3, args.size, args.size, generator=g) * 2 - 1).to(args.device)
    for _ in range(args.warmup):
        ref.step(a, b)
    times = []
    for _ in range(args.repeats):
        _sync(args.device)
        t0 = time.perf_counter()
        ref.step(a, b)
        _sync(args.device)
        times.append(time.perf_counter() - t0)
    med = statistics.median(times)
    print(f"reference step {args.size}px {args.blocks} blocks batch {args.batch} on {args.device} "
          f"(torch {torch.__version__}, {torch.get_num_threads()} threads): median {med:.3f} s/iter "
          f"over {args.repeats} (min {min(times):.3f}, max {max(times):.3f}); {args.batch / med:.2f} img/s")


if __name__ == "__main__":
    main()
