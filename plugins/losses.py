"""Built-in losses: adversarial ``bce`` (the article's) and ``lsgan`` (the reference's
default), reconstruction ``l1``."""
import torch
import torch.nn.functional as F

from unpaired import hookimpl


class BCELoss:
    """Vanilla GAN loss on logits. The discriminator loss averages its real and fake terms."""

    def generator_loss(self, fake_logits):
        return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))

    def discriminator_loss(self, real_logits, fake_logits):
        real = F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
        fake = F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
        return 0.5 * (real + fake)


class LSGANLoss:
    """Least squares GAN loss: mean squared error to 1 (real) and 0 (fake)."""

    def generator_loss(self, fake_logits):
        return F.mse_loss(fake_logits, torch.ones_like(fake_logits))

    def discriminator_loss(self, real_logits, fake_logits):
        real = F.mse_loss(real_logits, torch.ones_like(real_logits))
        fake = F.mse_loss(fake_logits, torch.zeros_like(fake_logits))
        return 0.5 * (real + fake)


def bce():
    """Binary cross-entropy on logits (the original GAN loss; the seed article's)."""
    return BCELoss()


def lsgan():
    """Least squares (the CycleGAN reference's default)."""
    return LSGANLoss()


def l1():
    """Mean absolute error, for the cycle and identity terms."""
    return F.l1_loss


@hookimpl
def register_losses(register):
    register("bce", bce, help="adversarial: binary cross-entropy on logits")
    register("lsgan", lsgan, help="adversarial: least squares (reference default)")
    register("l1", l1, help="reconstruction: mean absolute error")
