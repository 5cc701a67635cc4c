"""unpaired-unet: a pix2pix-style U-Net generator (``unet``), a hinge adversarial loss
(``unet_hinge``) and the GcGAN objective (``gcgan``) for unpaired, registered through the
``unpaired`` entry-point group."""
__version__ = "0.1.0"
