"""Built-in losses: adversarial ``bce`` (the article's), ``lsgan`` (the reference's default),
``hinge`` and ``wgan`` (with a gradient penalty); reconstruction ``l1``.

Every adversarial one takes ``r1_gamma`` (default 0: off) and ``r1_every``: the R1 penalty
(Mescheder et al. 2018), ``r1_gamma / 2 * E ||grad D(x_real)||^2`` on the real images as the
discriminator sees them (augmented), which the engine adds in ``judge`` (unpaired.api.Adversarial)
every ``r1_every`` steps, scaled by ``r1_every`` (lazy regularisation, StyleGAN2)."""
import torch
import torch.nn.functional as F

from unpaired.api import UnpairedError, hookimpl


class TargetLoss:
    """A GAN loss that pulls real logits to 1 and fake ones to 0 with ``criterion``
    (logits, targets); the discriminator loss averages its real and fake terms. ``boundary``:
    the logit between fake and real (0 for logits through a sigmoid; 0.5 for least squares)."""

    def __init__(self, criterion, boundary=0.0) -> None:
        self.criterion = criterion
        self.boundary = boundary

    def generator_loss(self, fake_logits):
        return self.criterion(fake_logits, torch.ones_like(fake_logits))

    def discriminator_loss(self, real_logits, fake_logits):
        real = self.criterion(real_logits, torch.ones_like(real_logits))
        fake = self.criterion(fake_logits, torch.zeros_like(fake_logits))
        return 0.5 * (real + fake)


class HingeLoss:
    """Hinge loss (Lim & Ye 2017; SAGAN, BigGAN). D: real logits pushed above 1, fake below -1,
    the two terms averaged like bce's; G: raise the fakes' logits."""

    def generator_loss(self, fake_logits):
        return -fake_logits.mean()

    def discriminator_loss(self, real_logits, fake_logits):
        return 0.5 * (F.relu(1 - real_logits).mean() + F.relu(1 + fake_logits).mean())


class WGANLoss:
    """Wasserstein loss (Arjovsky et al. 2017): D (the critic) widens the gap between its mean
    score of reals and of fakes, G raises the fakes' score. With ``gp_weight`` > 0 the object
    has ``penalty``, the gradient penalty of WGAN-GP (Gulrajani et al. 2017), which the engine
    adds to each discriminator's loss."""

    def __init__(self, gp_weight) -> None:
        self.gp_weight = gp_weight
        if gp_weight > 0:
            self.penalty = self._gradient_penalty

    def generator_loss(self, fake_logits):
        return -fake_logits.mean()

    def discriminator_loss(self, real_logits, fake_logits):
        return fake_logits.mean() - real_logits.mean()

    def _gradient_penalty(self, discriminator, real, fake):
        return self.gp_weight * gradient_penalty(discriminator, real, fake)


def gradient_penalty(discriminator, real, fake):
    """mean over samples of (||grad_x D(x)||_2 - 1)^2 at x = u real + (1 - u) fake, u ~ U(0, 1)
    per sample. Computed in float32 (autocast off) and differentiable w.r.t. D's parameters."""
    if real.shape != fake.shape:
        raise UnpairedError(f"gradient penalty: real {tuple(real.shape)} and fake {tuple(fake.shape)} images "
                            "differ in shape")
    with torch.autocast(real.device.type, enabled=False):
        real, fake = real.detach().float(), fake.detach().float()
        u = torch.rand((real.shape[0],) + (1,) * (real.dim() - 1), device=real.device)
        x = (u * real + (1 - u) * fake).requires_grad_(True)
        out = discriminator(x).float()
        (grad,) = torch.autograd.grad(out.sum(), x, create_graph=True)
        norm = torch.sqrt(grad.flatten(1).pow(2).sum(1) + 1e-12)  # eps: no NaN gradient at 0
        return (norm - 1).pow(2).mean()


def with_r1(loss, r1_gamma, r1_every):
    """``loss`` with the R1 settings the engine reads (``r1_gamma``, ``r1_every``), checked."""
    key = "losses.adversarial.params"
    if isinstance(r1_gamma, bool) or not isinstance(r1_gamma, (int, float)) or not 0 <= r1_gamma < float("inf"):
        raise UnpairedError(f"{key}.r1_gamma: {r1_gamma!r} must be a finite number >= 0 (0: no R1 penalty)")
    if isinstance(r1_every, bool) or not isinstance(r1_every, int) or r1_every < 1:
        raise UnpairedError(f"{key}.r1_every: {r1_every!r} must be a whole number of steps >= 1")
    loss.r1_gamma, loss.r1_every = float(r1_gamma), r1_every
    return loss


def bce(r1_gamma=0.0, r1_every=1):
    """Binary cross-entropy on logits (the original GAN loss; the seed article's)."""
    return with_r1(TargetLoss(F.binary_cross_entropy_with_logits), r1_gamma, r1_every)


def lsgan(r1_gamma=0.0, r1_every=1):
    """Least squares (the CycleGAN reference's default)."""
    return with_r1(TargetLoss(F.mse_loss, boundary=0.5), r1_gamma, r1_every)  # targets 0 (fake) and 1 (real)


def hinge(r1_gamma=0.0, r1_every=1):
    """Hinge: D mean(relu(1 - real)) and mean(relu(1 + fake)), averaged; G -mean(fake)."""
    return with_r1(HingeLoss(), r1_gamma, r1_every)


def wgan(gp_weight=10.0, r1_gamma=0.0, r1_every=1):
    """Wasserstein: D mean(fake) - mean(real); G -mean(fake). ``gp_weight`` scales the gradient
    penalty (WGAN-GP; 10 as in the paper); 0 disables it (then clip or constrain D yourself,
    e.g. ``spectral_norm: true`` on the discriminator). The history pool of fakes still applies."""
    if not isinstance(gp_weight, (int, float)) or isinstance(gp_weight, bool) or gp_weight < 0:
        raise UnpairedError(f"losses.adversarial.params.gp_weight: {gp_weight!r} must be a number >= 0")
    return with_r1(WGANLoss(float(gp_weight)), r1_gamma, r1_every)


def l1():
    """Mean absolute error, for the cycle and identity terms."""
    return F.l1_loss


@hookimpl
def register_losses(register) -> None:
    register("bce", bce, help="adversarial: binary cross-entropy on logits; R1 with r1_gamma")
    register("lsgan", lsgan, help="adversarial: least squares (reference default); R1 with r1_gamma")
    register("hinge", hinge, help="adversarial: hinge (SAGAN/BigGAN); R1 with r1_gamma")
    register("wgan", wgan, help="adversarial: Wasserstein, with gradient penalty gp_weight (WGAN-GP); R1 with r1_gamma")
    register("l1", l1, help="reconstruction: mean absolute error")
