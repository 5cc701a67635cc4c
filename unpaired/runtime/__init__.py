"""What a run stands on and what guards it: the device and precision (``devices``), several
processes under torchrun (``distributed``), the contract probes of plugins at start (``probe``),
NaN and divergence watch (``health``) and one run per folder (``runlock``)."""
