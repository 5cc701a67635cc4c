"""Sample grids ``samples/step_NNNNNNN.png`` in the run directory: the objective's sample rows
(cyclegan: real | translated | reconstructed, A->B then B->A; cut: real | translated, then B |
G(B)). Disable with ``disable_plugins: [samples]``."""
from pathlib import Path

from unpaired import hookimpl


@hookimpl
def on_sample(run, step, images):
    save_png(images["grid"], run.out_dir / "samples" / f"step_{step:07d}.png")


def save_png(img, path):
    import torchvision

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name("." + path.name + ".tmp")
    torchvision.utils.save_image(img, tmp, format="png")
    tmp.replace(path)
    return path
