"""The LSAT sections 6 and 7 data of Bock & Lieberman (1970), as pattern frequencies.

Both are public classic data sets (1000 examinees, 5 items each) distributed with
R's mirt (``LSAT6``, ``LSAT7``) and ltm (``LSAT`` is section 6). Patterns are in
binary order 00000, 00001, ..., 11111 (item 1 is the leftmost digit), as in
mirt's ``expand.table`` row order.
"""
import numpy as np

PATTERNS = ((np.arange(32)[:, None] >> np.arange(4, -1, -1)) & 1).astype(np.int8)

LSAT6_FREQUENCIES = np.array([3, 6, 2, 11, 1, 1, 3, 4, 1, 8, 0, 16, 0, 3, 2, 15,
                              10, 29, 14, 81, 3, 28, 15, 80, 16, 56, 21, 173, 11, 61, 28, 298])
LSAT7_FREQUENCIES = np.array([12, 19, 1, 7, 3, 19, 3, 17, 10, 5, 3, 7, 7, 23, 8, 28,
                              7, 39, 11, 34, 14, 51, 15, 90, 6, 25, 7, 35, 18, 136, 32, 308])


def expand(frequencies: np.ndarray) -> np.ndarray:
    """One row per examinee, (1000, 5), in mirt's expand.table order."""
    return np.repeat(PATTERNS, frequencies, axis=0)
