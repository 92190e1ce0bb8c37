"""JavaScript that finds overlapping text in every Plotly chart on a page (tests/test_browser_phone.py).

Every text a reader must be able to read: the chart's title, axis titles, tick labels and annotations
(subplot titles and notes included). Two of them overlap when their bounding boxes intersect by more than
`tolerance` pixels both ways. Hidden ones (display: none, zero size) do not count.
"""

OVERLAPS_JS = """(tolerance) => {
  const SEL = ['g.g-gtitle text', '.xtitle', '.ytitle', '.x2title', '.y2title', '.xtick text', '.ytick text',
               '.x2tick text', '.y2tick text', '.annotation-text', '.annotation text'];
  const out = [];
  document.querySelectorAll('.js-plotly-plot').forEach((plot, k) => {
    if (plot.closest('[data-stale="true"]')) return;
    const seen = new Set();
    const boxes = [];
    plot.querySelectorAll(SEL.join(',')).forEach(el => {
      if (seen.has(el)) return;
      seen.add(el);
      const r = el.getBoundingClientRect();
      const text = (el.textContent || '').trim();
      if (!text || r.width < 1 || r.height < 1) return;
      const cs = getComputedStyle(el);
      if (cs.display === 'none' || cs.visibility === 'hidden' || cs.opacity === '0') return;
      boxes.push({text, l: r.left, r: r.right, t: r.top, b: r.bottom});
    });
    // an annotation's <text> sits inside its own <g class="annotation-text-g">: keep the innermost only
    const title = (plot._fullLayout && plot._fullLayout.title && plot._fullLayout.title.text) || ('chart ' + k);
    for (let i = 0; i < boxes.length; i++) for (let j = i + 1; j < boxes.length; j++) {
      const a = boxes[i], b = boxes[j];
      const w = Math.min(a.r, b.r) - Math.max(a.l, b.l), h = Math.min(a.b, b.b) - Math.max(a.t, b.t);
      const same = Math.abs(a.l - b.l) < 0.5 && Math.abs(a.t - b.t) < 0.5 && a.text === b.text;
      if (w > tolerance && h > tolerance && !same) out.push({chart: title, a: a.text, b: b.text, w: Math.round(w), h: Math.round(h)});
    }
  });
  return out;
}"""

# The mode bar of every chart: "shown" or "hidden" (every button group transparent or invisible), "none" if
# the chart has none. With displayModeBar "hover" Plotly gives it the class modebar--hover and its groups
# opacity 0 until the pointer is over the chart.
MODEBAR_JS = """() => Array.from(document.querySelectorAll('.js-plotly-plot')).filter(p => !p.closest('[data-stale="true"]')).map(p => {
  const bar = p.querySelector('.modebar');
  if (!bar) return 'none';
  const groups = Array.from(bar.querySelectorAll('.modebar-group'));
  const seen = el => { const cs = getComputedStyle(el); return cs.visibility !== 'hidden' && cs.display !== 'none' && parseFloat(cs.opacity) > 0.05; };
  return (seen(bar) && groups.some(seen)) ? 'shown' : 'hidden';
})"""
