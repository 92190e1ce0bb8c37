"""Every Plotly figure of the app, built in core with one template.

* `style`: the palette, the template, log-axis ticks and shared helpers;
* `runs`: the charts of a run (variance by layer, heatmaps, loss, ...);
* `theory`: the Theory page's charts.

`from core import figures as F` gives the run charts and the style's public names.
"""
from core.figures.style import (
    COLOURS, HEALTHY_UPDATE_RATIO, HEATMAP_SPAN, MAX_POINTS, MAX_RIDGES, NAMES, TEMPLATE, THEORY_LABEL, log_ticks,
    sample_indices,
)
from core.figures.runs import (
    fig_histograms, fig_layer_step_heatmap, fig_loss_accuracy, fig_saturation, fig_theory_profile, fig_update_ratio,
    fig_variance_by_layer, fig_variance_compare, heatmap_zrange, theory_traces,
)
