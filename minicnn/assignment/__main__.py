"""``python -m minicnn.assignment build|grade ...`` (see :func:`minicnn.assignment.main`)."""
import sys

from . import main

sys.exit(main())
