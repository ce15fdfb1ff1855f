"""Durations as people read them (``1 d 6 h``), for one value and column-wise.

Shared by the engine (its reasons), resolving (the evidence) and reporting (the exports), so it sits
beside ``recon.money`` rather than in any one of them.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

# The two largest non-zero units are said: days and hours, hours and minutes, minutes and seconds, seconds.
_FIRST_UNIT = [" d ", " h ", " m ", " s"]
_SECOND_UNIT = [" h", " m", " s", ""]


def human_duration(seconds: int) -> str:
    """``172800`` -> ``2 d 0 h``; ``5400`` -> ``1 h 30 m``; ``75`` -> ``1 m 15 s``; ``12`` -> ``12 s``."""
    return str(human_durations(np.array([seconds], np.int64))[0].as_py())


def human_durations(seconds: npt.NDArray[np.int64]) -> pa.Array:
    """``human_duration`` of every value, column-wise (no Python loop over the rows): the two largest units
    from the largest non-zero one (days and hours, hours and minutes, minutes and seconds, or seconds)."""
    seconds = np.asarray(seconds, dtype=np.int64)
    magnitude = np.abs(seconds)
    parts = np.stack(
        [
            magnitude // 86_400,
            magnitude // 3_600 % 24,
            magnitude // 60 % 60,
            magnitude % 60,
            np.zeros_like(seconds),  # after the seconds: nothing (masked below)
        ]
    )
    # The largest non-zero unit (seconds when all are zero), then the one after it.
    level = np.where(parts[0] > 0, 0, np.where(parts[1] > 0, 1, np.where(parts[2] > 0, 2, 3)))
    rows = np.arange(len(seconds))
    first, second = parts[level, rows], parts[level + 1, rows]
    texts = [
        pa.array(np.where(seconds < 0, "-", "")),
        pa.array(first).cast(pa.string()),
        pa.DictionaryArray.from_arrays(pa.array(level.astype(np.int32)), _FIRST_UNIT).cast(pa.string()),
        pa.array(second, mask=level == 3).cast(pa.string()),
        pa.DictionaryArray.from_arrays(pa.array(level.astype(np.int32)), _SECOND_UNIT).cast(pa.string()),
    ]
    return pc.binary_join_element_wise(*[pc.fill_null(t, "") for t in texts], "")
