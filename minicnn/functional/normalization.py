"""The normalization layers now live one family per file: :mod:`.lrn` (local response
normalization) and :mod:`.batchnorm`; this module keeps the old import path working."""
from .batchnorm import BatchNorm, batch_norm  # noqa: F401
from .lrn import LocalResponseNorm, local_response_norm  # noqa: F401
from .validation import validate_batch_norm, validate_local_response_norm  # noqa: F401
