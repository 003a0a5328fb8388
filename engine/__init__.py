"""The vectorised psychometric core: IRT models, ability estimation, calibration.

Pure numpy/scipy: no database, no web. Arrays are examinees x items (x quadrature
points); responses are integers 1 (correct), 0 (wrong), -1 (not presented).
"""
from engine.ability import MISSING, AbilityEstimate, eap, normal_quadrature
from engine.models import ItemParameters, probability

__all__ = [
    "MISSING",
    "AbilityEstimate",
    "ItemParameters",
    "eap",
    "normal_quadrature",
    "probability",
]
