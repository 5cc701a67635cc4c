"""CUT and FastCUT (Park et al. 2020): one generator G (A -> B), one discriminator D (judges
B), and PatchNCE between G's encoder features of the input and of its translation.

    fake_b = G(a)                      (and idt_b = G(b) with the identity term)
    L_D = adv.d(D(b), D(fake_b))                                 first: D's step
    L_G = w_adv adv.g(D(fake_b)) + lambda_nce * NCE(a, fake_b)   then: G's and F's step
          (NCE averaged with NCE(b, idt_b) when nce_idt)

NCE(x, y): G's encoder activations of y (queries) against those of x (keys, no gradient) at
``num_patches`` random positions per layer, through F (:class:`PatchSampler`), at
``nce_temperature``, averaged over ``nce_layers``. FastCUT is the paper's faster setting:
lambda_nce 10, no identity term, flip equivariance (the input is flipped with p 0.5 and the
queries flipped back, so G must translate a mirrored image as the mirror of its translation).
No history pool; one-sided: it translates a2b only.
"""
import torch
from torch import nn

from unpaired.api import ADVERSARIAL, Objective, UnpairedError, flag, hookimpl, number

from .cyclegan import batch_independent
from .patchnce import FeatureTap, PatchSampler, patch_nce

CUT_LAYERS = ("input", "down1", "down2", "block1", "block5")
MAX_MLP_UNITS = 4096  # the paper's 256; 4096 already makes F's layers 16.8M parameters each


class GeneratorPass(nn.Module):
    """The generator phase: G's translations and the PatchNCE terms (G and F train together)."""

    def __init__(self, g, sampler, tap, identity, num_patches, temperature, fuse) -> None:
        super().__init__()
        self.g, self.sampler = g, sampler
        self.tap, self.identity, self.fuse = tap, identity, fuse
        self.num_patches, self.temperature = num_patches, temperature

    def forward(self, a, b, flip=False):
        n = a.shape[0]
        real = torch.cat([a, b]) if self.identity else a
        if flip:
            real = real.flip(3)
        fake = self.g(real)
        out = {"fake_b": fake[:n]}
        if self.identity:
            out["idt_b"] = fake[n:]
        if self.identity and self.fuse:  # one encoder pass for both terms (per-sample networks)
            queries = self._split(self.tap(fake), n)
            with torch.no_grad():
                keys = self._split(self.tap(torch.cat([a, b])), n)
            out["nce"] = self._nce(keys[0], queries[0], flip)
            out["nce_idt"] = self._nce(keys[1], queries[1], flip)
        else:
            out["nce"] = self._nce(self._keys(a), self.tap(out["fake_b"]), flip)
            if self.identity:
                out["nce_idt"] = self._nce(self._keys(b), self.tap(out["idt_b"]), flip)
        return out

    def _keys(self, x):
        with torch.no_grad():
            return self.tap(x)

    @staticmethod
    def _split(features, n):
        return [f[:n] for f in features], [f[n:] for f in features]

    def _nce(self, key_features, query_features, flip):
        """PatchNCE averaged over layers (each layer's loss a mean over its patches)."""
        if flip:  # back to the keys' orientation
            query_features = [f.flip(3) for f in query_features]
        return patch_nce(self.sampler, key_features, query_features, self.num_patches, self.temperature)


class Discriminate(nn.Module):
    """The discriminator phase: D's loss on real and (detached) fake images, with the
    adversarial loss's penalty when it has one (``judge``)."""

    def __init__(self, d, adversarial) -> None:
        super().__init__()
        self.d, self.adversarial = d, adversarial

    def forward(self, real, fake):
        return self.adversarial.judge(self.d, real, fake)


class CUT(Objective):
    """CUT: ``lambda_nce`` weight of PatchNCE, ``nce_idt`` the identity term on B,
    ``nce_layers`` the generator's encoder layers by name (module paths for a generator
    without ``features()``), ``num_patches`` per layer, ``nce_temperature``, ``mlp_units`` of
    F, ``flip_equivariance`` (FastCUT's augmentation)."""

    losses = {"adversarial": {"name": "lsgan", "weight": 1.0}}
    loss_kinds = {"adversarial": ADVERSARIAL}
    translators = {"a2b": "g"}
    sample_captions = {"idt_b": "B through G (should stay as it is): real | G(B)"}
    name = "cut"

    def __init__(self, parts, lambda_nce=1.0, nce_idt=True, nce_layers=CUT_LAYERS, num_patches=256,
                 nce_temperature=0.07, mlp_units=256, flip_equivariance=False) -> None:
        super().__init__()
        owner = f"objective.params.nce_layers (objective {self.name!r})"
        ca, cb = parts.channels
        if ca != cb:
            raise UnpairedError(f"objective.name: objective {self.name!r} compares G's features of an A image and "
                                f"of its B translation, so A and B need the same channels (the data has {ca} and {cb})")
        key = "objective.params."
        number(key + "lambda_nce", lambda_nce, 0)
        number(key + "nce_temperature", nce_temperature, 0, above=True)
        number(key + "num_patches", num_patches, 1, integer=True)
        number(key + "mlp_units", mlp_units, 1, MAX_MLP_UNITS, integer=True)  # F's layers are units x units
        flag(key + "nce_idt", nce_idt)
        flag(key + "flip_equivariance", flip_equivariance)
        if isinstance(nce_layers, str) or not all(isinstance(n, str) for n in nce_layers):
            raise UnpairedError(f"{owner}: {nce_layers!r} must be a list of layer names, e.g. [input, down1, block1]")
        self.g, self.d = parts.generator(ca, cb), parts.discriminator(cb)
        self.adversarial, self.w_adv = parts.loss("adversarial"), parts.weight("adversarial")
        self.lambda_nce, self.nce_idt = float(lambda_nce), bool(nce_idt)
        self.flip_equivariance = bool(flip_equivariance)
        tap = FeatureTap(self.g, list(nce_layers), owner)
        with torch.no_grad():  # F's input sizes from one small pass: F exists before optimizers and checkpoints
            channels = [f.shape[1] for f in tap(torch.zeros(1, ca, 64, 64))]
        self.f = parts.init(PatchSampler(channels, mlp_units))  # F is CUT's own: initialised as the recipe says
        self.generator_pass = GeneratorPass(self.g, self.f, tap, self.nce_idt, num_patches, nce_temperature,
                                            fuse=batch_independent(self.g))
        self.phases = {"g": self.generator_pass, "d": Discriminate(self.d, self.adversarial)}

    def networks(self):
        return {"g": self.g, "d": self.d, "f": self.f}

    def param_groups(self):
        return {"g": [*self.g.parameters(), *self.f.parameters()], "d": list(self.d.parameters())}

    def train_step(self, step, a, b, update):
        flip = self.flip_equivariance and bool(torch.rand(()) < 0.5)
        x = step["g"](a, b, flip)
        fake_b, adv = x["fake_b"], self.adversarial
        # D first, on the detached translation (its penalty, if any, included)
        terms = {"d": step["d"](b, fake_b.detach())}
        update("d", terms["d"])
        # then G and F, through D just updated (update("g") leaves D's gradients alone)
        terms["g_adv"] = self.w_adv * adv.generator_loss(self.d(fake_b))
        terms["nce"] = self.lambda_nce * x["nce"]
        nce = terms["nce"]
        if self.nce_idt:
            terms["nce_idt"] = self.lambda_nce * x["nce_idt"]
            nce = (nce + terms["nce_idt"]) * 0.5
        terms["g_total"] = terms["g_adv"] + nce
        update("g", terms["g_total"])
        return terms

    def samples(self, a, b):
        rows = {"a2b": (a, self.g(a))}
        if self.nce_idt:
            rows["idt_b"] = (b, self.g(b))
        return rows


class FastCUT(CUT):
    __doc__ = (CUT.__doc__ or "").replace(
        "CUT:", "FastCUT (CUT's defaults: lambda_nce 10, no nce_idt, flip_equivariance):", 1)
    name = "fastcut"

    def __init__(self, parts, lambda_nce=10.0, nce_idt=False, nce_layers=CUT_LAYERS, num_patches=256,
                 nce_temperature=0.07, mlp_units=256, flip_equivariance=True) -> None:
        super().__init__(parts, lambda_nce=lambda_nce, nce_idt=nce_idt, nce_layers=nce_layers,
                         num_patches=num_patches, nce_temperature=nce_temperature, mlp_units=mlp_units,
                         flip_equivariance=flip_equivariance)


@hookimpl
def register_objectives(register) -> None:
    register("cut", CUT, help="CUT: one-sided, PatchNCE between input and translation (Park et al. 2020)")
    register("fastcut", FastCUT, help="FastCUT: CUT with lambda_nce 10, no identity term, flip equivariance")
