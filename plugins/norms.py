"""Normalisation layers by name, shared by the built-in networks."""
import functools

from torch import nn

from unpaired.errors import UnpairedError

NORMS = {
    # the reference's "instance": no affine parameters, no running statistics
    "instance": functools.partial(nn.InstanceNorm2d, affine=False, track_running_stats=False),
    "batch": functools.partial(nn.BatchNorm2d, affine=True, track_running_stats=True),
    "none": None,
}


def norm_layer(norm):
    """(layer factory or None, whether convolutions before it need a bias)."""
    if norm not in NORMS:
        raise UnpairedError(f"norm {norm!r} is not one of {', '.join(NORMS)}")
    layer = NORMS[norm]
    # batch norm has its own shift, so the reference drops the conv bias before it
    return layer, norm != "batch"
