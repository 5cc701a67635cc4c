"""Built-in feature extractors for FID/KID: ``inception`` (the published-FID network,
weights downloaded once and hash-checked) and ``tiny`` (offline, not comparable)."""
from unpaired.api import builtin_extractors, hookimpl


@hookimpl
def register_feature_extractors(register) -> None:
    for name, (factory, help) in builtin_extractors().items():
        register(name, factory, help=help)
