"""UNSB, the Unpaired Neural Schrödinger Bridge (Kim, Kwon, Kim, Ye, ICLR 2024). The facts come
from the paper and the authors' code (github.com/cyclomon/UNSB: models/sb_model.py,
models/ncsn_networks.py, the horse2zebra run script); the code here is ours.

Translation is a procedure, the sampler :class:`Bridge`: T steps of a stochastic bridge from the
A image towards B, one generator pass per step (NFE = T, 5 by default):

    X_0     = a
    pred_t  = G(X_t, t, z_t)                                       t = 0 .. T-1, z_t ~ N(0, I)
    X_{t+1} = (1 - r_{t+1}) X_t + r_{t+1} pred_t + sqrt(s_{t+1} tau) eps_{t+1},  eps ~ N(0, I)
    output  = pred_{T-1}

with the times tau_0 .. tau_T of the authors' schedule (:func:`schedule`), r_t = (tau_t -
tau_{t-1}) / (tau_T - tau_{t-1}) and s_t = (tau_t - tau_{t-1}) (1 - r_t). G is the recipe's
generator conditioned on the step and a noise vector, D and E the recipe's discriminator
conditioned on the step (unpaired.engine.conditions; resnet and patchgan: ``conditioning``).

One training step draws one t uniformly from 0 .. T-1 (for the batch) and rolls the bridge out to
X_t (no gradient, G in eval mode) for the A batch, a second A batch (A2) and, with ``nce_idt``, the
B batch; then, with gradients, fake = G(X_t, t, z), fake2 = G(X_t^A2, t, z2), idt = G(X_t^B, t, z'):

    D   first:  adv.judge(D(., t), b, fake)                          the recipe's adversarial loss (lsgan)
    E   then:   mean_i [-mean E(p1, p1) + lse E(p1, p2) + (lse E(p1, p2))^2]
                p1 = [X_t, fake], p2 = [X_t^A2, fake2] (fakes detached); E judges two pairs side by
                side (4 C channels); lse: logsumexp over an image's logit map
    G+F last:   w_adv adv.g(D(fake, t))
              + lambda_sb (-(T - t) / T tau mean_i [mean E(p1, p1) - lse E(p1, p2)] + tau mean (X_t - fake)^2)
              + lambda_nce NCE(a, fake)  (averaged with NCE(b, idt) when nce_idt)

NCE is CUT's PatchNCE (plugins/patchnce.py) through G's encoder at step 0, one noise vector for
both images. Where this departs from the authors' code:

* lse over each image's logit map, then the mean over the batch; theirs is one logsumexp over the
  whole batch's maps. The same at batch 1 (the paper's); per image, N processes of batch n train
  as one process of batch N n.
* A2 is the previous step's A batch (at the first step, A mirrored); theirs comes from a second
  data loader. An independent image at no extra loading, saved with the per-rank state so resume
  stays exact.
* G's encoder and decoder are the built-in resnet's (strided convolutions), without the authors'
  blur before and after them (anti-aliasing, as the CUT code does).
* The training rollout stops at X_t; theirs also runs G once more at t and discards it.
"""
import functools
from itertools import accumulate

import torch
from torch import nn

from unpaired.api import (ADVERSARIAL, NOISE, Objective, TIMESTEP, UnpairedError, draw_noise as draw, flag, hookimpl,
                          number, size_multiple)

from .cut import CUT_LAYERS
from .cyclegan import batch_independent
from .patchnce import FeatureTap, PatchSampler, patch_nce


def schedule(steps):
    """The times tau_0 .. tau_T (T = ``steps``) of the authors' code: increments 0, 1, 1/2, ...,
    1/(T-1), summed and scaled to end at 1, then squeezed into [0.5, 1], with 0 in front. For T 5:
    0, 0.5, 0.74, 0.86, 0.94, 1."""
    if steps == 1:
        return [0.0, 1.0]
    sums = list(accumulate([0.0] + [1.0 / (i + 1) for i in range(steps - 1)]))
    times = [s / sums[-1] for s in sums]
    return [0.0] + [0.5 * times[-1] + 0.5 * s for s in times]


class Bridge(nn.Module):
    """UNSB's sampler over G: what translate, eval, export, tiling, video and the figures run
    (``UNSB.translator``). ``forward(x, z=None, eps=None)``: the translation; ``z`` (N, T,
    noise_dim) and ``eps`` (N, T - 1, C, H, W) are its standard-normal noise (``noise_inputs``,
    unpaired.engine.noise), drawn from torch's generator when not given."""

    def __init__(self, g, steps, tau, channels) -> None:
        super().__init__()
        self.g, self.steps, self.tau = g, steps, tau
        self.times = schedule(steps)
        self.noise_inputs: dict[str, tuple] = {"z": ("N", steps, g.noise_dim)}  # name -> its dims
        if steps > 1:
            self.noise_inputs["eps"] = ("N", steps - 1, channels, "H", "W")

    @property
    def size_multiple(self):
        return size_multiple(self.g)

    def coefficients(self, t):
        """(r_t, sqrt(s_t tau)): X_t's share of G's prediction, the noise's standard deviation."""
        delta = self.times[t] - self.times[t - 1]
        denom = self.times[-1] - self.times[t - 1]
        inter = delta / denom
        return inter, (delta * (1 - inter) * self.tau) ** 0.5

    def mix(self, x, pred, t, eps):
        """X_t from X_{t-1} and G's prediction at step t - 1 (t >= 1)."""
        inter, sd = self.coefficients(t)
        return (1 - inter) * x + inter * pred + sd * eps

    def roll_out(self, x, t, z, eps):
        """X_t: t steps of the bridge from X_0 = ``x`` (t generator passes); ``z[:, s]`` and
        ``eps[:, s]`` are step s's noise."""
        for s in range(t):
            x = self.mix(x, self.g(x, timestep=s, noise=z[:, s]), s + 1, eps[:, s])
        return x

    def predictions(self, x, z=None, eps=None):
        """G's prediction at each of the T steps; the last is the translation."""
        if z is None or (eps is None and self.steps > 1):
            drawn = draw(self, x)
            z = drawn["z"] if z is None else z
            eps = drawn.get("eps") if eps is None else eps
        preds: list[torch.Tensor] = []
        for s in range(self.steps):
            if s:
                x = self.mix(x, preds[-1], s, eps[:, s - 1])
            preds.append(self.g(x, timestep=s, noise=z[:, s]))
        return preds

    def forward(self, x, z=None, eps=None):
        return self.predictions(x, z, eps)[-1]


def energies(e, pair1, pair2, t):
    """(mean E(p1, p1), logsumexp E(p1, p2)) per image (N,), in float32."""
    same = e(torch.cat([pair1, pair1], dim=1), timestep=t).float().flatten(1).mean(dim=1)
    cross = torch.logsumexp(e(torch.cat([pair1, pair2], dim=1), timestep=t).float().flatten(1), dim=1)
    return same, cross


class GeneratorPass(nn.Module):
    """The generator phase: the rollout to X_t (no gradient, G in eval mode), G's passes at t
    (with gradients) and the NCE terms. ``fuse``: one batched G call for the A, A2 and B passes
    and one encoder pass for both NCE terms (the same numbers for per-sample networks)."""

    def __init__(self, bridge, sampler, tap, identity, num_patches, temperature, fuse) -> None:
        super().__init__()
        self.bridge, self.sampler = bridge, sampler
        self.tap, self.identity, self.fuse = tap, identity, fuse
        self.num_patches, self.temperature = num_patches, temperature

    def forward(self, a, b, a2, t, noise):
        g, n = self.bridge.g, a.shape[0]
        names = ["a", "a2"] + (["b"] if self.identity else [])
        sources = torch.cat([a, a2] + ([b] if self.identity else []))
        training = g.training
        g.eval()
        try:
            with torch.no_grad():
                xt = self.bridge.roll_out(sources, t, noise["z_roll"], noise["eps_roll"])
        finally:
            g.train(training)
        out = {"xt": xt[:n], "xt2": xt[n:2 * n]}
        if self.fuse:
            fakes = g(xt, timestep=t, noise=torch.cat([noise[f"z_{s}"] for s in names])).split(n)
        else:  # batch norm: the A and B passes together, A2 alone (as the authors batch them)
            first = [0] + ([2] if self.identity else [])
            together = g(torch.cat([xt[i * n:(i + 1) * n] for i in first]), timestep=t,
                         noise=torch.cat([noise[f"z_{names[i]}"] for i in first])).split(n)
            fakes = [together[0], g(out["xt2"], timestep=t, noise=noise["z_a2"]), *together[1:]]
        out["fake_b"], out["fake_b2"] = fakes[0], fakes[1]
        if self.identity:
            out["idt_b"] = fakes[2]
        out.update(self._nce(a, b, out, noise))
        return out

    def _nce(self, a, b, out, noise):
        """PatchNCE of the translation against its input (and of B's identity pass against B)
        through G's encoder at step 0, one noise vector per pair."""
        n = a.shape[0]
        if self.identity and self.fuse:
            z = torch.cat([noise["z_nce"], noise["z_nce_idt"]])
            queries = self.tap(torch.cat([out["fake_b"], out["idt_b"]]), timestep=0, noise=z)
            with torch.no_grad():
                keys = self.tap(torch.cat([a, b]), timestep=0, noise=z)
            nce = [patch_nce(self.sampler, [k[i * n:(i + 1) * n] for k in keys],
                             [q[i * n:(i + 1) * n] for q in queries], self.num_patches, self.temperature)
                   for i in range(2)]
            return {"nce": nce[0], "nce_idt": nce[1]}
        terms = {"nce": self._pair(a, out["fake_b"], noise["z_nce"])}
        if self.identity:
            terms["nce_idt"] = self._pair(b, out["idt_b"], noise["z_nce_idt"])
        return terms

    def _pair(self, source, translated, z):
        with torch.no_grad():
            keys = self.tap(source, timestep=0, noise=z)
        return patch_nce(self.sampler, keys, self.tap(translated, timestep=0, noise=z), self.num_patches,
                         self.temperature)


class Discriminate(nn.Module):
    """D's phase: the adversarial loss's ``judge`` of D at step t (its penalty included)."""

    def __init__(self, d, adversarial) -> None:
        super().__init__()
        self.d, self.adversarial = d, adversarial

    def forward(self, real, fake, t):
        return self.adversarial.judge(functools.partial(self.d, timestep=t), real, fake)


class Energy(nn.Module):
    """E's phase: mean over images of -mean E(p1, p1) + lse E(p1, p2) + lse E(p1, p2)^2."""

    def __init__(self, e) -> None:
        super().__init__()
        self.e = e

    def forward(self, pair1, pair2, t):
        same, cross = energies(self.e, pair1, pair2, t)
        return (-same + cross + cross ** 2).mean()


class UNSB(Objective):
    """UNSB: ``num_timesteps`` T (the sampler's steps = generator passes per translation),
    ``tau`` the entropy regularisation, ``lambda_sb`` the Schrödinger-bridge term's weight
    (1.0, the authors' horse2zebra script; their code's default is 0.1), ``lambda_nce`` PatchNCE's,
    ``nce_idt`` the identity NCE on B, and CUT's ``nce_layers``, ``num_patches``,
    ``nce_temperature``, ``mlp_units``. Needs a generator that takes timestep and noise and a
    discriminator that takes timestep (resnet, patchgan: ``conditioning``)."""

    losses = {"adversarial": {"name": "lsgan", "weight": 1.0}}
    loss_kinds = {"adversarial": ADVERSARIAL}
    translators = {"a2b": "g"}
    generator_conditions = (TIMESTEP, NOISE)
    discriminator_conditions = (TIMESTEP,)
    sample_captions = {"a2b": "A -> B: real | the sampler's prediction at each step (the last is the translation)"}
    name = "unsb"

    def __init__(self, parts, num_timesteps=5, tau=0.01, lambda_sb=1.0, lambda_nce=1.0, nce_idt=True,
                 nce_layers=CUT_LAYERS, num_patches=256, nce_temperature=0.07, mlp_units=256) -> None:
        super().__init__()
        key = "objective.params."
        number(key + "num_timesteps", num_timesteps, 1, integer=True)
        for name, value in (("tau", tau), ("lambda_sb", lambda_sb), ("lambda_nce", lambda_nce)):
            number(key + name, value, 0)
        number(key + "nce_temperature", nce_temperature, 0, above=True)
        number(key + "num_patches", num_patches, 1, integer=True)
        number(key + "mlp_units", mlp_units, 1, integer=True)
        flag(key + "nce_idt", nce_idt)
        ca, cb = parts.channels
        if ca != cb:
            raise UnpairedError(f"objective.name: objective {self.name!r} mixes the A image with G's B prediction, "
                                f"so A and B need the same channels (the data has {ca} and {cb})")
        self.g = parts.generator(ca, cb)
        self.d = parts.discriminator(cb)
        # judges two (X_t, X_t+1) pairs side by side; an energy, not a judge of real images: never augmented
        self.e = parts.discriminator(4 * cb, augment=False)
        self.adversarial, self.w_adv = parts.loss("adversarial"), parts.weight("adversarial")
        self.tau, self.lambda_sb, self.lambda_nce = float(tau), float(lambda_sb), float(lambda_nce)
        self.nce_idt = nce_idt
        tap = FeatureTap(self.g, list(nce_layers), f"{key}nce_layers (objective {self.name!r})")
        with torch.no_grad():  # F's input sizes from one small pass: F exists before optimizers and checkpoints
            channels = [f.shape[1] for f in tap(torch.zeros(1, ca, 64, 64))]
        self.f = parts.init(PatchSampler(channels, mlp_units))
        self.bridge = Bridge(self.g, num_timesteps, self.tau, cb)
        self.generator_pass = GeneratorPass(self.bridge, self.f, tap, nce_idt, num_patches, nce_temperature,
                                            fuse=batch_independent(self.g))
        self.phases = {"g": self.generator_pass, "d": Discriminate(self.d, self.adversarial), "e": Energy(self.e)}
        self.previous_a = None  # the second A batch of the next step

    def networks(self):
        return {"g": self.g, "d": self.d, "e": self.e, "f": self.f}

    def param_groups(self):
        return {"g": [*self.g.parameters(), *self.f.parameters()], "d": list(self.d.parameters()),
                "e": list(self.e.parameters())}

    def translator(self, direction):
        return self.bridge

    def noise(self, step, name, n, *shape):
        """N(0, 1) of shape (n, *shape) for this process's ``n`` images: drawn for every process's
        images of the step and sliced, so N processes of batch n draw what one of batch N n does.
        ``name`` says what it is for (tests record the draws by it)."""
        full = torch.randn(step.world_size * n, *shape, device=step.device)
        return full[step.rank * n:(step.rank + 1) * n]

    def train_step(self, step, a, b, update):
        steps, n, (c, h, w) = self.bridge.steps, a.shape[0], a.shape[1:]
        t = int(torch.randint(steps, ()))
        a2 = self.previous_a.to(a) if self.previous_a is not None and self.previous_a.shape == a.shape else a.flip(3)
        self.previous_a = a.detach().clone()
        sources = ["a", "a2"] + (["b"] if self.nce_idt else [])
        zdim = self.g.noise_dim
        noise = {"z_roll": torch.cat([self.noise(step, f"z_roll_{s}", n, t, zdim) for s in sources]),
                 "eps_roll": torch.cat([self.noise(step, f"eps_roll_{s}", n, t, c, h, w) for s in sources])}
        for s in sources + ["nce"] + (["nce_idt"] if self.nce_idt else []):
            noise[f"z_{s}"] = self.noise(step, f"z_{s}", n, zdim)
        x = step["g"](a, b, a2, t, noise)
        fake, fake2, adv = x["fake_b"], x["fake_b2"], self.adversarial
        # D first, on the detached translation at step t (its penalty, if any, included)
        terms = {"d": step["d"](b, fake.detach(), t)}
        update("d", terms["d"])
        # then E, on the detached (X_t, translation) pairs
        terms["e"] = step["e"](torch.cat([x["xt"], fake.detach()], dim=1),
                               torch.cat([x["xt2"], fake2.detach()], dim=1), t)
        update("e", terms["e"])
        # then G and F, through D and E just updated (update("g") leaves their gradients alone)
        terms["g_adv"] = self.w_adv * adv.generator_loss(self.d(fake, timestep=t))
        sb = self.tau * (x["xt"] - fake).pow(2).mean()
        if self.lambda_sb > 0:
            same, cross = energies(self.e, torch.cat([x["xt"], fake], dim=1), torch.cat([x["xt2"], fake2], dim=1), t)
            sb = sb - (steps - t) / steps * self.tau * (same - cross).mean()
        terms["sb"] = self.lambda_sb * sb
        terms["nce"] = self.lambda_nce * x["nce"]
        nce = terms["nce"]
        if self.nce_idt:
            terms["nce_idt"] = self.lambda_nce * x["nce_idt"]
            nce = (nce + terms["nce_idt"]) * 0.5
        terms["g_total"] = terms["g_adv"] + terms["sb"] + nce
        update("g", terms["g_total"])
        return terms

    def samples(self, a, b):
        return {"a2b": (a, *self.bridge.predictions(a))}

    def extra_state(self):
        return {} if self.previous_a is None else {"previous_a": self.previous_a.detach().cpu()}

    def load_extra_state(self, state) -> None:
        previous = state.get("previous_a")
        self.previous_a = None if previous is None else previous.to(next(self.g.parameters()).device)


@hookimpl
def register_objectives(register) -> None:
    register("unsb", UNSB, help="UNSB: a multi-step stochastic sampler (Schrödinger bridge), adversarial + "
             "entropy + PatchNCE (Kim et al. 2024); one-sided")
