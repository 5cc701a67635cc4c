"""The data layer: image files (``images``: decoding, folder scanning), their check
(``check``), public datasets (``download``), image <-> tensor conversions (``tensors``) and
the reproducible, resumable order of a run (``order``, re-exported here: plugins import
``unpaired.data.SeededItems``)."""
from .order import SeededItems, StepBatches, collate, fixed_items, item_seed, make_loader

__all__ = ["SeededItems", "StepBatches", "collate", "fixed_items", "item_seed", "make_loader"]
