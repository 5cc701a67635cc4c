"""``python -m unpaired.cli`` (as ``python -m unpaired``)."""
import sys

from . import main

sys.exit(main())
