"""The recipe, before anything is built: its schema and overrides (``config``) and the rules
that keep it predictable from anywhere (``rules``: moved keys, plugin swaps, relative data
paths, renamed metrics). Plain data: nothing here loads torch."""
