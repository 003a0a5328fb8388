"""The vectorised psychometric core: IRT models, ability estimation, calibration.

Pure numpy/scipy: no database, no web. Arrays are examinees x items (x quadrature
points); responses are integers 1 (correct), 0 (wrong), -1 (not presented), or a
``SparseResponses`` for incomplete designs. See docs/engine.md for a tour.
"""
from engine.ability import (
    AbilityEstimate,
    SummedScoreTable,
    eap,
    map_estimate,
    ml_estimate,
    normal_quadrature,
    sum_score_eap,
    summed_score_likelihood,
    wle_estimate,
)
from engine.adaptive import (
    CatChoice,
    CatSettings,
    CatState,
    CatStop,
    ExposureControl,
    next_item,
    should_stop,
    simulate_cat,
)
from engine.calibration import Calibration, FixedItems, Priors, calibrate
from engine.classical import (
    ClassicalStatistics,
    DistractorAnalysis,
    MantelHaenszelDIF,
    classical_statistics,
    distractor_analysis,
    mantel_haenszel,
)
from engine.fit import ItemFit, impute_responses, sx2
from engine.linking import LinkingConstants, link
from engine.models import (
    ItemParameters,
    item_information,
    log_likelihood,
    probability,
    probability_derivative,
    standard_error,
    test_characteristic,
    test_information,
)
from engine.responses import MISSING, SparseResponses
from engine.simulate import simulate_items, simulate_responses, simulate_sparse_design

__all__ = [
    "MISSING",
    "AbilityEstimate",
    "Calibration",
    "CatChoice",
    "CatSettings",
    "CatState",
    "CatStop",
    "ClassicalStatistics",
    "DistractorAnalysis",
    "ExposureControl",
    "FixedItems",
    "ItemFit",
    "ItemParameters",
    "LinkingConstants",
    "MantelHaenszelDIF",
    "Priors",
    "SparseResponses",
    "SummedScoreTable",
    "calibrate",
    "classical_statistics",
    "distractor_analysis",
    "eap",
    "impute_responses",
    "item_information",
    "link",
    "log_likelihood",
    "mantel_haenszel",
    "map_estimate",
    "ml_estimate",
    "next_item",
    "normal_quadrature",
    "probability",
    "probability_derivative",
    "should_stop",
    "simulate_cat",
    "simulate_items",
    "simulate_responses",
    "simulate_sparse_design",
    "standard_error",
    "sum_score_eap",
    "summed_score_likelihood",
    "sx2",
    "test_characteristic",
    "test_information",
    "wle_estimate",
]
