"""The CycleGAN objective: four networks, the generator step, the discriminator step.

    fake_b = G_AB(a)   rec_a = G_BA(fake_b)      fake_a = G_BA(b)   rec_b = G_AB(fake_a)
    L_G = w_adv (adv.g(D_B(fake_b)) + adv.g(D_A(fake_a)))
        + w_cyc (rec(rec_a, a) + rec(rec_b, b))
        + w_id  (rec(G_BA(a), a) + rec(G_AB(b), b))
    L_D = adv.d(D_A(a), D_A(pool_a(fake_a))) + adv.d(D_B(b), D_B(pool_b(fake_b)))

The identity term is skipped when its weight is 0 or the two domains have different
channel counts. Each phase runs its networks through one module call (``generators`` and
``discriminators``), which is what DistributedDataParallel wraps when several processes
train together. Losses are returned as tensors and read back only when logged.
"""
import torch
from torch import nn


def set_requires_grad(nets, flag):
    for net in nets:
        for p in net.parameters():
            p.requires_grad_(flag)


class Generators(nn.Module):
    """Both generators' passes of one step. With ``fuse``, each generator's translation and
    identity passes run as one batched call (4 calls instead of 6): the same numbers for
    per-sample networks (instance norm), faster on most hardware."""

    def __init__(self, g_ab, g_ba, identity=True, fuse=False):
        super().__init__()
        self.g_ab, self.g_ba = g_ab, g_ba
        self.identity, self.fuse = identity, fuse

    def forward(self, a, b):
        out = {}
        if self.identity and self.fuse and a.shape == b.shape:
            out["fake_b"], out["idt_b"] = self.g_ab(torch.cat([a, b])).chunk(2)
            out["fake_a"], out["idt_a"] = self.g_ba(torch.cat([b, a])).chunk(2)
        else:
            out["fake_b"], out["fake_a"] = self.g_ab(a), self.g_ba(b)
            if self.identity:
                out["idt_a"], out["idt_b"] = self.g_ba(a), self.g_ab(b)
        out["rec_a"], out["rec_b"] = self.g_ba(out["fake_b"]), self.g_ab(out["fake_a"])
        return out


class Discriminators(nn.Module):
    """Both discriminators on real and (pooled, detached) fake images."""

    def __init__(self, d_a, d_b):
        super().__init__()
        self.d_a, self.d_b = d_a, d_b

    def forward(self, a, fake_a, b, fake_b):
        return self.d_a(a), self.d_a(fake_a), self.d_b(b), self.d_b(fake_b)


class CycleGAN(nn.Module):
    def __init__(self, g_ab, g_ba, d_a, d_b, adversarial, cycle, identity,
                 w_adv=1.0, w_cycle=10.0, w_identity=5.0, use_identity=True, fuse=False):
        super().__init__()
        self.use_identity = use_identity and w_identity != 0
        self.g = Generators(g_ab, g_ba, identity=self.use_identity, fuse=fuse)
        self.d = Discriminators(d_a, d_b)
        # what each phase calls: the modules themselves, or their DDP wrappers
        self.run_g, self.run_d = self.g, self.d
        self.adversarial, self.cycle, self.identity = adversarial, cycle, identity
        self.w_adv, self.w_cycle, self.w_identity = w_adv, w_cycle, w_identity

    g_ab = property(lambda self: self.g.g_ab)
    g_ba = property(lambda self: self.g.g_ba)
    d_a = property(lambda self: self.d.d_a)
    d_b = property(lambda self: self.d.d_b)

    def nets(self):
        """{"g_ab": ..., "g_ba": ..., "d_a": ..., "d_b": ...}"""
        return {"g_ab": self.g_ab, "g_ba": self.g_ba, "d_a": self.d_a, "d_b": self.d_b}

    def generators(self):
        return [self.g_ab, self.g_ba]

    def discriminators(self):
        return [self.d_a, self.d_b]

    def generator_loss(self, a, b):
        """(L_G, {name: term}, fake_a, fake_b); discriminators get no gradients."""
        set_requires_grad(self.discriminators(), False)
        x = self.run_g(a, b)
        adv = self.adversarial
        terms = {
            "g_adv_ab": self.w_adv * adv.generator_loss(self.d_b(x["fake_b"])),
            "g_adv_ba": self.w_adv * adv.generator_loss(self.d_a(x["fake_a"])),
            "cycle_a": self.w_cycle * self.cycle(x["rec_a"], a),
            "cycle_b": self.w_cycle * self.cycle(x["rec_b"], b),
        }
        if self.use_identity:
            terms["idt_a"] = self.w_identity * self.identity(x["idt_a"], a)
            terms["idt_b"] = self.w_identity * self.identity(x["idt_b"], b)
        set_requires_grad(self.discriminators(), True)
        return sum(terms.values()), terms, x["fake_a"], x["fake_b"]

    def discriminator_loss(self, a, b, fake_a, fake_b):
        """(L_D, {name: term}) on real images and (pooled) fakes, which carry no graph."""
        adv = self.adversarial
        fake_a, fake_b = fake_a.detach(), fake_b.detach()
        real_a_logits, fake_a_logits, real_b_logits, fake_b_logits = self.run_d(a, fake_a, b, fake_b)
        terms = {
            "d_a": adv.discriminator_loss(real_a_logits, fake_a_logits),
            "d_b": adv.discriminator_loss(real_b_logits, fake_b_logits),
        }
        penalty = getattr(adv, "penalty", None)
        if penalty is not None:  # e.g. WGAN-GP's gradient penalty
            terms["penalty_a"] = penalty(self.d_a, a, fake_a)
            terms["penalty_b"] = penalty(self.d_b, b, fake_b)
        return sum(terms.values()), terms

    @torch.no_grad()
    def translate(self, a, b):
        """Sample rows: (a, G_AB(a), G_BA(G_AB(a))), (b, G_BA(b), G_AB(G_BA(b)))."""
        fake_b, fake_a = self.g_ab(a), self.g_ba(b)
        return (a, fake_b, self.g_ba(fake_b)), (b, fake_a, self.g_ab(fake_a))
