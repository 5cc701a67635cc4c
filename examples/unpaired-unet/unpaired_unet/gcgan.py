"""GcGAN (Fu et al., CVPR 2019, "Geometry-Consistent Generative Adversarial Networks for
One-Sided Unsupervised Domain Mapping"), written from the paper and the settings of its code.

One-sided A->B. A fixed geometric transformation f (``rot``: a 90-degree clockwise rotation;
``vflip``: a vertical flip) maps A to a transformed domain A~ and B to B~. G translates A and
G~ translates A~ (the same network by default, ``share_generator``); D judges B and D~
judges B~ (two discriminators, as in the authors' code). Translating should commute with f:

    fake_b = G(a)     fake_gb = G~(f(a))
    L_G  = w_adv (adv.g(D(fake_b)) + adv.g(D~(fake_gb)))
         + w_gc  (rec(fake_b, f^-1(fake_gb)) + rec(fake_gb, f(fake_b)))   each target detached
         + w_idt (rec(G(b), b) + rec(G~(f(b)), f(b)))                     0 turns it off
    L_D  = adv.d(D(b), D(pool(fake_b))) + adv.d(D~(f(b)), D~(pool~(fake_gb)))

The generator step comes first, then the discriminator step on history pools of
``pool_size`` fakes, as in the authors' code. Defaults are theirs: lsgan; the
geometry term's weight 20 (their lambda_AB 10 x lambda_gc 2); identity 5 (10 x 0.5).
"""
import torch
from torch import nn

from unpaired.api import ADVERSARIAL, ImagePool, Objective, RECONSTRUCTION, UnpairedError

# (f, its inverse) on (N, C, H, W) batches
TRANSFORMS = {
    "rot": (lambda x: torch.rot90(x, -1, (2, 3)), lambda x: torch.rot90(x, 1, (2, 3))),
    "vflip": (lambda x: x.flip(2), lambda x: x.flip(2)),
}


class Generators(nn.Module):
    """The generator phase: G on a (and b), G~ on f(a) (and f(b))."""

    def __init__(self, g, g_gc, f, identity):
        super().__init__()
        self.g, self.g_gc, self.f, self.identity = g, g_gc, f, identity

    def forward(self, a, b):
        out = {"fake_b": self.g(a), "fake_gb": self.g_gc(self.f(a))}
        if self.identity:
            out["idt_b"], out["idt_gb"] = self.g(b), self.g_gc(self.f(b))
        return out


class Discriminators(nn.Module):
    """The discriminator phase: D's loss on b and fake_b, D~'s on f(b) and fake_gb, each through
    the adversarial loss's ``judge`` (which adds its penalty, if any, once)."""

    def __init__(self, d, d_gc, adversarial):
        super().__init__()
        self.d, self.d_gc, self.adversarial = d, d_gc, adversarial

    def forward(self, b, fake_b, gb, fake_gb):
        judge = self.adversarial.judge
        return {"d": judge(self.d, b, fake_b), "d_gc": judge(self.d_gc, gb, fake_gb)}


class GcGAN(Objective):
    """GcGAN: ``transform`` rot (90 degrees clockwise) | vflip; ``share_generator``: G~ is G
    (the paper's default; its code trains a second one for horse2zebra and winter/summer);
    ``pool_size`` fakes per history pool (50, as the authors')."""

    losses = {
        "adversarial": {"name": "lsgan", "weight": 1.0},
        "geometry": {"name": "l1", "weight": 20.0},
        "identity": {"name": "l1", "weight": 5.0},
    }
    loss_kinds = {"adversarial": ADVERSARIAL, "geometry": RECONSTRUCTION, "identity": RECONSTRUCTION}
    translators = {"a2b": "g"}

    def __init__(self, parts, transform="rot", share_generator=True, pool_size=50):
        super().__init__()
        if transform not in TRANSFORMS:
            raise UnpairedError(f"objective.params.transform: {transform!r} is not one of {', '.join(TRANSFORMS)}")
        ca, cb = parts.channels
        self.f, self.f_inv = TRANSFORMS[transform]
        g = parts.generator(ca, cb)
        self.g_gc = None if share_generator else parts.generator(ca, cb)
        self.d, self.d_gc = parts.discriminator(cb), parts.discriminator(cb)
        self.adversarial, self.geometry, self.identity = (parts.loss(r) for r in ("adversarial", "geometry", "identity"))
        self.w_adv, self.w_gc, self.w_idt = (parts.weight(r) for r in ("adversarial", "geometry", "identity"))
        self.gen = Generators(g, g if self.g_gc is None else self.g_gc, self.f, identity=ca == cb and self.w_idt != 0)
        self.disc = Discriminators(self.d, self.d_gc, self.adversarial)
        self.phases = {"g": self.gen, "d": self.disc}
        seed = (parts.seed * 1000 + parts.rank) * 2
        self.pool, self.pool_gc = (ImagePool(pool_size, seed=seed + k) for k in (1, 2))

    g = property(lambda self: self.gen.g)

    def networks(self):
        nets = {"g": self.g, "d": self.d, "d_gc": self.d_gc}
        return nets if self.g_gc is None else {**nets, "g_gc": self.g_gc}

    def param_groups(self):
        gs = [self.g] if self.g_gc is None else [self.g, self.g_gc]
        return {"g": [p for g in gs for p in g.parameters()], "d": [*self.d.parameters(), *self.d_gc.parameters()]}

    def train_step(self, step, a, b, update):
        x = step["g"](a, b)
        fake_b, fake_gb, adv = x["fake_b"], x["fake_gb"], self.adversarial
        terms = {
            "g_adv": self.w_adv * adv.generator_loss(self.d(fake_b)),
            "g_adv_gc": self.w_adv * adv.generator_loss(self.d_gc(fake_gb)),
            "gc": self.w_gc * (self.geometry(fake_b, self.f_inv(fake_gb).detach())
                               + self.geometry(fake_gb, self.f(fake_b).detach())),
        }
        if "idt_b" in x:
            terms["idt"] = self.w_idt * self.identity(x["idt_b"], b)
            terms["idt_gc"] = self.w_idt * self.identity(x["idt_gb"], self.f(b))
        terms["g_total"] = sum(terms.values())
        update("g", terms["g_total"])
        gb = self.f(b)
        fake_b, fake_gb = self.pool.query(fake_b), self.pool_gc.query(fake_gb)
        d_terms = step["d"](b, fake_b, gb, fake_gb)
        update("d", sum(d_terms.values()))
        return {**terms, **d_terms}

    def samples(self, a, b):
        """a | G(a) | f^-1(G~(f(a))): the last two agree when G is geometry-consistent."""
        return {"a2b": (a, self.g(a), self.f_inv(self.gen.g_gc(self.f(a))))}

    def extra_state(self):
        return {"pools": {"b": self.pool.state_dict(), "gb": self.pool_gc.state_dict()}}

    def load_extra_state(self, state):
        device = next(self.parameters()).device
        self.pool.load_state_dict(state["pools"]["b"], device)
        self.pool_gc.load_state_dict(state["pools"]["gb"], device)

