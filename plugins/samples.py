"""Sample grids ``samples/step_NNNNNNN.png`` in the run directory: the objective's sample rows
(cyclegan: real | translated | reconstructed, A->B then B->A; cut: real | translated, then B |
G(B)). Disable with ``disable_plugins: [samples]``."""
from unpaired.api import hookimpl, save_image, to_image


@hookimpl
def on_sample(run, step, images) -> None:
    save_png(images["grid"], run.out_dir / "samples" / f"step_{step:07d}.png")


def save_png(img, path):
    """A (3, H, W) tensor in [0, 1] as a PNG, written to a temporary name and renamed."""
    return save_image(to_image(img * 2 - 1), path)
