"""The CycleGAN objective: four networks, the generator step, the discriminator step.

    fake_b = G_AB(a)   rec_a = G_BA(fake_b)      fake_a = G_BA(b)   rec_b = G_AB(fake_a)
    L_G = w_adv (adv.g(D_B(fake_b)) + adv.g(D_A(fake_a)))
        + w_cyc (rec(rec_a, a) + rec(rec_b, b))
        + w_id  (rec(G_BA(a), a) + rec(G_AB(b), b))
    L_D = adv.d(D_A(a), D_A(pool_a(fake_a))) + adv.d(D_B(b), D_B(pool_b(fake_b)))

The identity term is skipped when its weight is 0 or the two domains have different
channel counts. Losses are returned as tensors and read back only when logged.
"""
import torch
from torch import nn


def set_requires_grad(nets, flag):
    for net in nets:
        for p in net.parameters():
            p.requires_grad_(flag)


class CycleGAN(nn.Module):
    def __init__(self, g_ab, g_ba, d_a, d_b, adversarial, cycle, identity,
                 w_adv=1.0, w_cycle=10.0, w_identity=5.0, use_identity=True):
        super().__init__()
        self.g_ab, self.g_ba, self.d_a, self.d_b = g_ab, g_ba, d_a, d_b
        self.adversarial, self.cycle, self.identity = adversarial, cycle, identity
        self.w_adv, self.w_cycle, self.w_identity = w_adv, w_cycle, w_identity
        self.use_identity = use_identity and w_identity != 0

    def generators(self):
        return [self.g_ab, self.g_ba]

    def discriminators(self):
        return [self.d_a, self.d_b]

    def generator_loss(self, a, b):
        """(L_G, {name: term}, fake_a, fake_b); discriminators get no gradients."""
        set_requires_grad(self.discriminators(), False)
        fake_b, fake_a = self.g_ab(a), self.g_ba(b)
        rec_a, rec_b = self.g_ba(fake_b), self.g_ab(fake_a)
        adv = self.adversarial
        terms = {
            "g_adv_ab": self.w_adv * adv.generator_loss(self.d_b(fake_b)),
            "g_adv_ba": self.w_adv * adv.generator_loss(self.d_a(fake_a)),
            "cycle_a": self.w_cycle * self.cycle(rec_a, a),
            "cycle_b": self.w_cycle * self.cycle(rec_b, b),
        }
        if self.use_identity:
            terms["idt_a"] = self.w_identity * self.identity(self.g_ba(a), a)
            terms["idt_b"] = self.w_identity * self.identity(self.g_ab(b), b)
        set_requires_grad(self.discriminators(), True)
        return sum(terms.values()), terms, fake_a, fake_b

    def discriminator_loss(self, a, b, fake_a, fake_b):
        """(L_D, {name: term}) on real images and (pooled) fakes, which carry no graph."""
        adv = self.adversarial
        fake_a, fake_b = fake_a.detach(), fake_b.detach()
        terms = {
            "d_a": adv.discriminator_loss(self.d_a(a), self.d_a(fake_a)),
            "d_b": adv.discriminator_loss(self.d_b(b), self.d_b(fake_b)),
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
