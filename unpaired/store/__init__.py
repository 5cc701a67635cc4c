"""What a run leaves on disk: ``checkpoint`` (the format, atomic saves, kept steps), ``files``
(every write atomic, never through a planted link), ``rng`` (random states saved and restored)."""
