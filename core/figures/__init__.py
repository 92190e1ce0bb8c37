"""Every Plotly figure of the app, built in core with one template.

One module per family of charts, each a set of pure functions `fig_*(arrays or table, ...) -> go.Figure`:

* `style`: the palette, the one template, the shared layout and helpers (log axes, gaps, notes);
* `runs`: the charts of one run (variance by layer, heatmaps, loss, distributions, ...);
* `compare`: several runs on one chart (Compare);
* `theory`: the Theory page's charts (variance map, phase diagram, Jacobian spectrum, profile);
* `learn`: the Learn page's small line charts;
* `boundary`: a 2-D dataset's decision boundary (what the network predicts over the plane).

`from core import figures as F` gives every figure builder and the style's public names.
"""
from core.figures.style import (
    CLASS_COLOURS, COLOURS, HEALTHY_UPDATE_RATIO, HEATMAP_SPAN, MAX_POINTS, MAX_RIDGES, NAMES, PLOTLY_CONFIG, RUN_COLOURS, RUN_DASHES,
    SERIES_COLOURS, TEMPLATE,
    THEORY_LABEL, log_ticks, sample_indices,
)
from core.figures.runs import (
    fig_histograms, fig_layer_step_heatmap, fig_loss_accuracy, fig_saturation, fig_theory_profile, fig_update_ratio,
    fig_variance_by_layer, heatmap_zrange, theory_traces,
)
from core.figures.compare import fig_loss_compare, fig_variance_compare, shared_zrange
from core.figures.theory import fig_jacobian_spectrum, fig_phase_diagram, fig_predicted_profile, fig_variance_map
from core.figures.learn import fig_by_layer, fig_lines
from core.figures.boundary import fig_decision_boundary
