"""The plugin module named by the entry point: hook implementations only."""
from unpaired.api import hookimpl

from .gcgan import GcGAN
from .losses import unet_hinge
from .unet import unet


@hookimpl
def register_generators(register):
    register("unet", unet, help="pix2pix U-Net; image sides must be multiples of 2**num_downs")


@hookimpl
def register_losses(register):
    register("unet_hinge", unet_hinge, help="adversarial: hinge, with an optional margin")


@hookimpl
def register_objectives(register):
    register("gcgan", GcGAN, help="GcGAN: one-sided; translating commutes with a fixed rotation or flip "
             "(Fu et al. 2019)")
