"""The version of unpaired (one place: the package, the plugin list and checkpoints read it)."""
__version__ = "0.2.0.dev0"
