"""PatchNCE (Park et al. 2020, "Contrastive Learning for Unpaired Image-to-Image Translation"):
the parts the CUT objectives share.

* :class:`FeatureTap` reads a generator's encoder activations by layer name: through the
  generator's ``features(x, layers)`` method where it has one (resnet, the example unet),
  else by module path (``model.4``) with forward hooks on a full pass.
* :class:`PatchSampler` (the paper's F): per layer, the same random positions for the query
  and the key, then a two-layer MLP (C -> units -> units) and L2 normalisation. It is sized
  when built, from a dummy pass, so optimizers, checkpoints, compile and DDP see it from the start.
* :func:`patch_nce_loss`: for each sampled query patch, the key patch at the same position is
  the positive and the other sampled patches of the same image are the negatives;
  cross-entropy over (positive, negatives) / temperature.
* :func:`patch_nce`: the loss between two images' features, averaged over layers (CUT's and
  UNSB's NCE term).
"""
import torch
import torch.nn.functional as F
from torch import nn

from unpaired.api import UnpairedError


class FeatureTap:
    """``tap(x) -> [activation per layer]`` of ``generator`` at ``layers`` (names); errors
    start with ``owner`` (the recipe key and the objective)."""

    def __init__(self, generator, layers, owner) -> None:
        self.generator, self.layers = generator, list(layers)
        self.by_name = callable(getattr(generator, "features", None))
        if not self.layers:
            raise UnpairedError(f"{owner}: give at least one layer")
        if not self.by_name:
            modules = dict(generator.named_modules())
            missing = [name for name in self.layers if name not in modules]
            if missing:
                raise UnpairedError(
                    f"{owner}: the generator ({type(generator).__name__}) has no features(x, layers) "
                    f"method, so layers are module paths, and it has no module {', '.join(map(repr, missing))}. "
                    "Give module paths (e.g. model.4), or add features() to the generator (docs/plugins.md)")
        self.owner = owner

    def __call__(self, x, **conditions):
        """The activations for images ``x``; ``conditions`` (``timestep=``, ``noise=``) go to a
        conditioned generator (unpaired.engine.conditions)."""
        if self.by_name:
            try:
                return self.generator.features(x, self.layers, **conditions)
            except UnpairedError as exc:
                raise UnpairedError(f"{self.owner}: {exc}") from None
        found: dict[str, torch.Tensor] = {}  # layer -> its output
        modules = dict(self.generator.named_modules())
        hooks = [modules[name].register_forward_hook(lambda m, i, out, name=name: found.__setitem__(name, out))
                 for name in self.layers]
        try:
            self.generator(x, **conditions)
        finally:
            for h in hooks:
                h.remove()
        return [found[name] for name in self.layers]


class PatchSampler(nn.Module):
    """F: ``sampler(features, num_patches, ids=None) -> (samples, ids)``; each sample is
    (N * P, units), L2-normalised; ``ids`` are the positions drawn per layer (reuse them
    for the matching features)."""

    def __init__(self, channels, units=256) -> None:
        super().__init__()
        self.mlps = nn.ModuleList(nn.Sequential(nn.Linear(c, units), nn.ReLU(), nn.Linear(units, units))
                                  for c in channels)

    def forward(self, features, num_patches, ids=None):
        samples, drawn = [], []
        for k, (feat, mlp) in enumerate(zip(features, self.mlps)):
            n, c, h, w = feat.shape
            flat = feat.permute(0, 2, 3, 1).reshape(n, h * w, c)
            if ids is None:  # the engine's seeded CPU generator: resumable, the same on any device
                layer_ids = torch.randperm(h * w)[:min(num_patches, h * w)].to(feat.device)
            else:
                layer_ids = ids[k]
            x = mlp(flat[:, layer_ids, :].reshape(-1, c))
            samples.append(x / (x.norm(dim=1, keepdim=True) + 1e-7))
            drawn.append(layer_ids)
        return samples, drawn


def patch_nce(sampler, key_features, query_features, num_patches, temperature):
    """PatchNCE between two images' features (lists per layer, keys without gradient), averaged
    over the layers, each layer's loss the mean over its patches: F (``sampler``) draws
    ``num_patches`` positions per layer on the keys and samples the queries at the same ones."""
    with torch.no_grad():
        keys, ids = sampler(key_features, num_patches)
    queries, _ = sampler(query_features, num_patches, ids)
    n = key_features[0].shape[0]
    losses = [patch_nce_loss(q, k, n, temperature).mean() for q, k in zip(queries, keys)]
    return sum(losses) / len(losses)


def patch_nce_loss(query, key, n_images, temperature=0.07):
    """Per-patch PatchNCE loss, shape (N * P,): ``query`` and ``key`` are (N * P, D) samples of
    the same positions (key detached here); negatives come from the same image only."""
    key = key.detach()
    dim = query.shape[1]
    positive = (query * key).sum(dim=1, keepdim=True)
    q, k = query.view(n_images, -1, dim), key.view(n_images, -1, dim)
    p = q.shape[1]
    negative = torch.bmm(q, k.transpose(1, 2))  # (N, P, P): every query against every key
    same = torch.eye(p, dtype=torch.bool, device=query.device)[None]
    negative = negative.masked_fill(same, -10.0).view(-1, p)  # the positive is not its own negative
    logits = torch.cat([positive, negative], dim=1) / temperature
    return F.cross_entropy(logits, torch.zeros(len(logits), dtype=torch.long, device=query.device), reduction="none")
