"""The scale transformation: theta to the program's reporting scale."""
from __future__ import annotations

import numpy as np

from itembank.program import ScaleTransformation


def to_scale(theta: np.ndarray, scale: ScaleTransformation) -> np.ndarray:
    """clip(round(intercept + slope * theta), minimum, maximum), halves rounded up."""
    raw = np.floor(scale.intercept + scale.slope * np.asarray(theta, dtype=float) + 0.5)
    return np.clip(raw, scale.minimum, scale.maximum).astype(int)
