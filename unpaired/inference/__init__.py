"""Inference: a trained generator applied to images (``translate``: the ``Translator`` API and
``unpaired translate``), huge images in tiles (``tiling``), videos (``video``) and export to
ONNX / torch.export (``export``)."""
