"""Theory beside measurement: mean-field signal propagation for wide networks.

* `quadrature`: Gaussian expectations of an activation (the numerical core);
* `meanfield`: the variance and correlation maps, fixed points, χ₁, depth
  scales, the phase diagram;
* `predictions`: per-layer predictions for a configured network;
* `jacobian`: the measured input-output Jacobian spectrum at initialization;
* `measured`: the real network measured at initialization, in the predictions' columns;
* `explain`: the results in sentences for people.

`from core import theory as T` gives all of their public names.
"""
from core.theory.quadrature import gaussian_moments, quadrature_rule
from core.theory.meanfield import (
    chi1, correlation_fixed_point, correlation_map, critical_line, critical_sigma_w2, depth_scales, fixed_point,
    phase, phase_diagram, q_path, summary, variance_map, variance_map_slope,
)
from core.theory.predictions import (
    effective_sigma2, gradient_profile, jacobian_theory_mean, predicted_profile, profile_table,
)
from core.theory.predictions import SettingSummary, gradient_window, setting_summary
from core.theory.jacobian import jacobian_singular_values
from core.theory.jacobian import JACOBIAN_MAX_COST, jacobian_at_init, jacobian_cost, jacobian_inputs
from core.theory.measured import at_init_config, measure_at_init, measured_profile, slope_curves
from core.theory.explain import (
    PHASE_WORDS, PhaseStory, forward_sentence, gradient_sentence, limitations, phase_story, phase_word, pow10,
    ratio_text, trend,
)

__all__ = [
    "quadrature_rule", "gaussian_moments", "variance_map", "variance_map_slope", "q_path", "fixed_point", "chi1",
    "critical_sigma_w2", "correlation_map", "correlation_fixed_point", "depth_scales", "phase", "summary",
    "phase_diagram", "critical_line", "gradient_profile", "effective_sigma2", "predicted_profile", "profile_table",
    "jacobian_singular_values", "jacobian_theory_mean",
    "SettingSummary", "setting_summary", "gradient_window", "JACOBIAN_MAX_COST", "jacobian_cost", "jacobian_inputs",
    "jacobian_at_init", "at_init_config", "measure_at_init", "measured_profile", "slope_curves", "gradient_sentence",
    "limitations", "pow10", "ratio_text", "PHASE_WORDS", "PhaseStory", "forward_sentence", "phase_story",
    "phase_word", "trend",
]
