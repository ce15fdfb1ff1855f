"""Suite-wide settings.

Hypothesis runs derandomized by default, so `make test` and CI are reproducible: a property test either
passes on every run or fails on every run. Set HYPOTHESIS_PROFILE=explore for fresh random examples
(with more of them) when hunting for new failures locally.
"""

from __future__ import annotations

import os

from hypothesis import settings

settings.register_profile("repeatable", derandomize=True, print_blob=True)
settings.register_profile("explore", derandomize=False, max_examples=1000, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "repeatable"))
