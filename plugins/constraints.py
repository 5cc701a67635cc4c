"""Built-in constraints (unpaired.engine.constraints): what a translation must keep, for every
objective.

* ``semantic`` (labels): a segmentation network f_s — any registered generator-shaped network
  with K output channels (``network``; default a small resnet), its outputs times
  ``logit_scale`` read as class logits — trained in its own phase on the labelled domain's real
  images (cross-entropy with their labels); the generator is penalised by the cross-entropy of
  f_s(G(x)) against x's labels (CyCADA's semantic consistency, joliGEN's ``f_s``). f_s learns on
  the real images of the constrained domain only: their labels are the only ones known, and a
  network that also trained on translations would learn to read whatever G makes of them.
* ``mask_keep`` (labels or a 0/255 mask): where the label is ``keep_class`` (0: outside the
  mask) the translation must equal its input (mean absolute difference over those pixels), so
  changes stay inside the mask ("add snow on the road, leave the rest").
* ``edges`` (no labels): the translation keeps the input's structure: the L1 distance between
  the two images' edge maps (Sobel magnitude of the luminance, each divided by its own mean, so
  a change of contrast or palette is free and a lost or invented line is not).
"""
import torch
import torch.nn.functional as F

from unpaired.api import UnpairedError, get_registry, hookimpl, number


def _domain(domain):
    if domain not in ("A", "B"):
        raise UnpairedError(f"constraints.params.domain: {domain!r} must be A or B (whose images it keeps)")
    return domain


class Semantic:
    """The ``semantic`` constraint (module docstring)."""

    needs_labels = True

    def __init__(self, channels, classes, domain="A", network=None, logit_scale=8.0):
        self.domain = _domain(domain)
        if classes is None:
            raise UnpairedError(f"constraint semantic: domain {self.domain} has no labels")
        number("constraints.params.logit_scale", logit_scale, 0, float("inf"), above=True)
        choice = dict(network or {"name": "resnet", "params": {"ngf": 16, "n_blocks": 2}})
        self.network_name = choice.get("name", "resnet")
        self.f = get_registry().create("generator", self.network_name, dict(choice.get("params") or {}),
                                       key="constraints.params.network", in_channels=channels, out_channels=classes)
        self.logit_scale = float(logit_scale)
        self.classes = classes

    def networks(self):
        return {"segmenter": self.f}

    def segment(self, images):
        """Class logits (N, K, H, W) of ``images`` (what eval's ``miou_a2b`` reads)."""
        return self.f(images).float() * self.logit_scale

    def train_loss(self, real, labels):
        return F.cross_entropy(self.segment(real), labels)

    def generator_loss(self, real, translated, labels):
        return F.cross_entropy(self.segment(translated), labels)


class MaskKeep:
    """The ``mask_keep`` constraint (module docstring)."""

    needs_labels = True

    def __init__(self, channels, classes, domain="A", keep_class=0):
        self.domain = _domain(domain)
        number("constraints.params.keep_class", keep_class, 0, 254, integer=True)
        self.keep_class = keep_class

    def generator_loss(self, real, translated, labels):
        if translated.shape != real.shape:
            raise UnpairedError(f"constraint mask_keep: the translation has {translated.shape[1]} channels and its "
                                f"input {real.shape[1]}: they cannot be compared")
        keep = (labels == self.keep_class).unsqueeze(1).to(translated.dtype)
        kept = keep.sum() * translated.shape[1]
        return ((translated - real).abs() * keep).sum() / kept.clamp(min=1.0)


SOBEL = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])


def edge_map(images):
    """Sobel gradient magnitude of the luminance, divided by its per-image mean."""
    x = images.float()
    gray = x.mean(1, keepdim=True) if x.shape[1] != 3 else (0.299 * x[:, :1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:])
    kernels = torch.stack([SOBEL, SOBEL.t()]).unsqueeze(1).to(gray.device)
    g = F.conv2d(F.pad(gray, (1, 1, 1, 1), mode="replicate"), kernels)
    magnitude = torch.sqrt(g.pow(2).sum(1, keepdim=True) + 1e-8)
    return magnitude / magnitude.mean((1, 2, 3), keepdim=True).clamp(min=1e-6)


class Edges:
    """The ``edges`` constraint (module docstring)."""

    needs_labels = False

    def __init__(self, channels, classes, domain="A"):
        self.domain = _domain(domain)

    def generator_loss(self, real, translated, labels):
        return (edge_map(translated) - edge_map(real)).abs().mean()


@hookimpl
def register_constraints(register) -> None:
    register("semantic", Semantic, help="labels: a segmentation network f_s trained on the real labelled images; "
                                        "G penalised by the cross-entropy of f_s(G(x)) with x's labels")
    register("mask_keep", MaskKeep, help="labels/mask: the translation equals its input where the label is keep_class")
    register("edges", Edges, help="no labels: the translation keeps its input's edges (normalised Sobel maps, L1)")
