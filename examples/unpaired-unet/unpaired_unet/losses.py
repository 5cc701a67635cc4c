"""A hinge adversarial loss. It needs no base class: the two methods make it adversarial."""
import torch.nn.functional as F

from unpaired.api import UnpairedError


class HingeLoss:
    def __init__(self, margin):
        self.margin = margin

    def generator_loss(self, fake_logits):
        return -fake_logits.mean()

    def discriminator_loss(self, real_logits, fake_logits):
        real = F.relu(self.margin - real_logits).mean()
        fake = F.relu(self.margin + fake_logits).mean()
        return 0.5 * (real + fake)


def unet_hinge(margin=1.0):
    """Hinge loss: D mean(relu(margin - real)) and mean(relu(margin + fake)), averaged;
    G -mean(fake). ``margin`` > 0 (1 in SAGAN and BigGAN)."""
    if not isinstance(margin, (int, float)) or margin <= 0:
        raise UnpairedError(f"losses.adversarial.params.margin: {margin!r} must be a number > 0")
    return HingeLoss(float(margin))
