"""The vectorised psychometric core: IRT models, ability estimation, calibration.

Pure numpy/scipy: no database, no web. Arrays are examinees x items (x quadrature
points); responses are integers 1 (correct), 0 (wrong), -1 (not presented), or a
``SparseResponses`` for incomplete designs. See docs/engine.md for a tour.
"""
from engine.ability import (
    AbilityEstimate,
    SummedScoreTable,
    eap,
    empirical_reliability,
    map_estimate,
    marginal_reliability,
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
from engine.fit import ItemFit, LimitedInformationFit, degrees_of_freedom, impute_responses, m2, sx2
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
from engine.multigroup import LikelihoodRatioDIF, MultipleGroupCalibration, calibrate_groups, likelihood_ratio_dif
from engine.responses import MISSING, SparseResponses
from engine.simulate import simulate_items, simulate_responses, simulate_sparse_design
from engine.subscores import MultidimensionalEstimate, augmented_subscores, field_correlation, multidimensional_eap

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
    "LikelihoodRatioDIF",
    "MultipleGroupCalibration",
    "calibrate_groups",
    "likelihood_ratio_dif",
    "MultidimensionalEstimate",
    "multidimensional_eap",
    "augmented_subscores",
    "field_correlation",
    "classical_statistics",
    "distractor_analysis",
    "link",
    "mantel_haenszel",
    "sx2",
    "m2",
    "LimitedInformationFit",
    "degrees_of_freedom",
    "impute_responses",
    "Priors",
    "SparseResponses",
    "SummedScoreTable",
    "calibrate",
    "eap",
    "empirical_reliability",
    "marginal_reliability",
    "item_information",
    "log_likelihood",
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
    "test_characteristic",
    "test_information",
    "wle_estimate",
]
