"""The math of every layer: one file per op family, each op a ``Function`` with forward/backward."""
