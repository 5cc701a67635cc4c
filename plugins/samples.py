"""Sample grids ``samples/step_NNNNNNN.png`` in the run directory: the objective's sample rows
(cyclegan: real | translated | reconstructed, A->B then B->A; cut: real | translated, then B |
G(B)). Disable with ``disable_plugins: [samples]``."""
from unpaired import hookimpl
from unpaired.outputs import save_png


@hookimpl
def on_sample(run, step, images):
    save_png(images["grid"], run.out_dir / "samples" / f"step_{step:07d}.png")
