"""``python -m minicnn.testing <command> ...``: a ``minicnn`` command with the test devices
registered, e.g. ``python -m minicnn.testing gradcheck --device standin``."""
import sys

from . import standin_device  # noqa: F401  (registers the device "standin")
from ..cli import main

sys.exit(main())
