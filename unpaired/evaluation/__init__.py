"""Evaluation: the metrics (``metrics``: FID, KID, PSNR, SSIM, L1), the feature extractors
they compare images with (``features``) and the evaluator that runs them over a test split
for ``unpaired eval`` and during training (``evaluate``)."""
