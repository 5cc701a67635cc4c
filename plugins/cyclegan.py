"""The CycleGAN objective (Zhu et al. 2017): four networks, the generator step, then the
discriminator step on history pools.

    fake_b = G_AB(a)   rec_a = G_BA(fake_b)      fake_a = G_BA(b)   rec_b = G_AB(fake_a)
    L_G = w_adv (adv.g(D_B(fake_b)) + adv.g(D_A(fake_a)))
        + w_cyc (rec(rec_a, a) + rec(rec_b, b))
        + w_id  (rec(G_BA(a), a) + rec(G_AB(b), b))
    L_D = adv.d(D_A(a), D_A(pool_a(fake_a))) + adv.d(D_B(b), D_B(pool_b(fake_b)))

The identity term is skipped when its weight is 0 or the two domains have different
channel counts. Each phase runs its networks through one module call (``generators`` and
``discriminators``), which is what DistributedDataParallel wraps when several processes
train together. Each discriminator's loss comes from the adversarial loss's ``judge``, which
adds the loss's penalty (WGAN-GP) exactly once; the engine's ``update`` keeps the generator loss
out of the discriminators' gradients.
"""
import torch
from torch import nn

from unpaired.api import ADVERSARIAL, Objective, RECONSTRUCTION, UnpairedError, hookimpl

from .pool import ImagePool


def batch_independent(net) -> bool:
    """True when the network treats each sample of a batch on its own (no batch norm), so two
    passes batched into one call give the same numbers as two calls."""
    return not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in net.modules())


class Generators(nn.Module):
    """Both generators' passes of one step. With ``fuse``, each generator's translation and
    identity passes run as one batched call (4 calls instead of 6): the same numbers for
    per-sample networks (instance norm), faster on most hardware."""

    def __init__(self, g_ab, g_ba, identity=True, fuse=False) -> None:
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
    """Both discriminators' losses on real and (pooled, detached) fake images."""

    def __init__(self, d_a, d_b, adversarial) -> None:
        super().__init__()
        self.d_a, self.d_b = d_a, d_b
        self.adversarial = adversarial

    def forward(self, a, fake_a, b, fake_b):
        judge = self.adversarial.judge
        return {"d_a": judge(self.d_a, a, fake_a), "d_b": judge(self.d_b, b, fake_b)}


class CycleGAN(Objective):
    """CycleGAN: ``pool_size`` fakes per history pool (50; 0: none), ``fuse_passes`` one batched
    call for a generator's translation and identity passes (null: on unless the generator has
    batch norm, which mixes the two batches). Before 0.2 these were ``train.pool_size`` and
    ``train.fuse_passes``; recipes and checkpoints that set those are moved here."""

    losses = {
        "adversarial": {"name": "bce", "weight": 1.0},
        "cycle": {"name": "l1", "weight": 10.0},
        "identity": {"name": "l1", "weight": 5.0},
    }
    loss_kinds = {"adversarial": ADVERSARIAL, "cycle": RECONSTRUCTION, "identity": RECONSTRUCTION}
    translators = {"a2b": "g_ab", "b2a": "g_ba"}

    def __init__(self, parts, pool_size=50, fuse_passes=None) -> None:
        super().__init__()
        if isinstance(pool_size, bool) or not isinstance(pool_size, int) or pool_size < 0:
            raise UnpairedError(f"objective.params.pool_size: {pool_size!r} must be an integer >= 0")
        if fuse_passes is not None and not isinstance(fuse_passes, bool):
            raise UnpairedError(f"objective.params.fuse_passes: {fuse_passes!r} must be true, false or null")
        ca, cb = parts.channels
        g_ab, g_ba = parts.generator(ca, cb), parts.generator(cb, ca)
        d_a, d_b = parts.discriminator(ca), parts.discriminator(cb)
        self.adversarial, self.cycle, self.identity = (parts.loss(r) for r in ("adversarial", "cycle", "identity"))
        self.w_adv, self.w_cycle, self.w_identity = (parts.weight(r) for r in ("adversarial", "cycle", "identity"))
        self.use_identity = ca == cb and self.w_identity != 0
        fuse = fuse_passes
        if fuse is None:
            fuse = batch_independent(g_ab) and batch_independent(g_ba)
        self.g = Generators(g_ab, g_ba, identity=self.use_identity, fuse=fuse)
        self.d = Discriminators(d_a, d_b, self.adversarial)
        self.phases = {"g": self.g, "d": self.d}
        seed = (parts.seed * 1000 + parts.rank) * 2
        self.pool_a, self.pool_b = ImagePool(pool_size, seed=seed + 1), ImagePool(pool_size, seed=seed + 2)

    g_ab = property(lambda self: self.g.g_ab)
    g_ba = property(lambda self: self.g.g_ba)
    d_a = property(lambda self: self.d.d_a)
    d_b = property(lambda self: self.d.d_b)

    def networks(self):
        return {"g_ab": self.g_ab, "g_ba": self.g_ba, "d_a": self.d_a, "d_b": self.d_b}

    def param_groups(self):
        return {"g": [*self.g_ab.parameters(), *self.g_ba.parameters()],
                "d": [*self.d_a.parameters(), *self.d_b.parameters()]}

    def train_step(self, step, a, b, update):
        loss_g, terms, fake_a, fake_b = self.generator_loss(a, b, step["g"])
        update("g", loss_g)
        loss_d, d_terms = self.discriminator_loss(a, b, self.pool_a.query(fake_a), self.pool_b.query(fake_b), step["d"])
        update("d", loss_d)
        return {**terms, "g_total": loss_g, **d_terms}

    def generator_loss(self, a, b, generators=None):
        """(L_G, {name: term}, fake_a, fake_b). ``generators``: what runs the generator phase
        (its DDP wrapper in training; default ``self.g``)."""
        x = (generators or self.g)(a, b)
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
        return sum(terms.values()), terms, x["fake_a"], x["fake_b"]

    def discriminator_loss(self, a, b, fake_a, fake_b, discriminators=None):
        """(L_D, {name: term}) on real images and (pooled) fakes, which carry no graph; each
        term includes the adversarial loss's penalty when it has one."""
        terms = (discriminators or self.d)(a, fake_a.detach(), b, fake_b.detach())
        return sum(terms.values()), terms

    def samples(self, a, b):
        """Rows (real, translated, reconstructed) for each direction."""
        fake_b, fake_a = self.g_ab(a), self.g_ba(b)
        return {"a2b": (a, fake_b, self.g_ba(fake_b)), "b2a": (b, fake_a, self.g_ab(fake_a))}

    def translate(self, a, b):
        """(a, G_AB(a), G_BA(G_AB(a))), (b, G_BA(b), G_AB(G_BA(b))) — kept for 0.1.0 callers."""
        rows = self.samples(a, b)
        return rows["a2b"], rows["b2a"]

    def extra_state(self):
        return {"pools": {"a": self.pool_a.state_dict(), "b": self.pool_b.state_dict()}}

    def load_extra_state(self, state) -> None:
        device = next(self.parameters()).device
        self.pool_a.load_state_dict(state["pools"]["a"], device)
        self.pool_b.load_state_dict(state["pools"]["b"], device)


@hookimpl
def register_objectives(register) -> None:
    register("cyclegan", CycleGAN, help="CycleGAN: two generators, two discriminators, cycle and identity "
             "losses, history pools (Zhu et al. 2017)")
