"""The engine: what trains and what a trained run gives back.

``build``: the recipe checked against the installed plugins (every name and param before any
data is touched), the datasets, provenance. ``assemble``: an objective from a recipe (its
networks, losses, augmentation). ``objective``: the Objective base class and what an objective
receives (Parts). ``phases``: the optimizers and the Step of each phase. ``augment``: the
augmentation seam. ``conditions`` and ``noise``: conditioned networks and stochastic
translators. ``trainer``: the loop; ``events``: what it tells plugins. ``restore``: a
checkpoint's recipe and translators, and what ``--resume`` checks."""
