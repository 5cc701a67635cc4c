"""Normalisation layers by name, shared by the built-in networks."""
import functools

from torch import nn

from unpaired.api import one_of

NORMS = {
    # the reference's "instance": no affine parameters, no running statistics
    "instance": functools.partial(nn.InstanceNorm2d, affine=False, track_running_stats=False),
    "batch": functools.partial(nn.BatchNorm2d, affine=True, track_running_stats=True),
    "none": None,
}


def norm_layer(norm, key="norm"):
    """(layer factory or None, whether convolutions before it need a bias)."""
    layer = NORMS[one_of(key, norm, NORMS)]
    # batch norm has its own shift, so the reference drops the conv bias before it
    return layer, norm != "batch"
