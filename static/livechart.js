// A Plotly chart that is drawn once and then patched in place (ui/livechart.py, core/figures/live.py).
//
// Each Streamlit refresh hands this module a payload for one chart:
//   {base, n, fig}                      the full figure (first draw, or the structure changed), or
//   {base, n, since, extend, set, layout, ranges}   the changes after `since` records per run.
// The chart's element is never replaced: a full figure goes through Plotly.react on the same node,
// a patch through extendTraces (new points) and one Plotly.update (curves, title, notes, axes).
// Axis ranges are left alone on an axis the user zoomed, until they double-click it back.
// A patch this chart cannot apply (another base, records missing) asks Python for the full figure
// once (the `resync` trigger).
//
// Drawing is what costs (50-180 ms of the browser's main thread per draw on a 2-core machine), so:
// - the payloads of one chart wait in its inbox and only the newest one that applies is drawn (each
//   patch carries the records since a few refreshes back, and whole curves, title and axes);
// - the charts draw one at a time, at most one per animation frame, so the page stays responsive;
// - a payload sent while a run moves (`live`) waits while its chart is off-screen or the tab is
//   hidden, and is drawn once the chart scrolls into view; a chart's first figure, and everything
//   sent once the run has stopped, is drawn at once.
const PLOTLY_URL = new URL('plotly.min.js', import.meta.url).href;
const CONFIG = {displaylogo: false, responsive: true, toImageButtonOptions: {format: 'png', scale: 2}};
let loading = null;

function plotly() {
  if (window.Plotly) return Promise.resolve(window.Plotly);
  if (!loading) {
    loading = new Promise((resolve, reject) => {
      const s = document.createElement('script');
      s.src = PLOTLY_URL;
      s.async = true;
      s.onload = () => resolve(window.Plotly);
      s.onerror = () => { loading = null; reject(new Error('could not load ' + PLOTLY_URL)); };
      document.head.appendChild(s);
    });
  }
  return loading;
}

function unpack(text) {
  if (text === '') return [];
  const parts = text.split(',');
  const out = new Array(parts.length);
  for (let i = 0; i < parts.length; i++) out[i] = parts[i] === '' ? NaN : +parts[i];
  return out;
}

// Plotly.py sends numpy arrays as {dtype, bdata, shape}; Plotly.js decodes them only for drawing and
// keeps the spec in gd.data, which extendTraces cannot extend: decode them to plain arrays first.
const DTYPES = {f8: Float64Array, f4: Float32Array, i4: Int32Array, u4: Uint32Array, i2: Int16Array,
                u2: Uint16Array, i1: Int8Array, u1: Uint8Array};

function decode(spec) {
  const raw = atob(spec.bdata);
  const bytes = new Uint8Array(raw.length);
  for (let i = 0; i < raw.length; i++) bytes[i] = raw.charCodeAt(i);
  const flat = Array.from(new DTYPES[spec.dtype](bytes.buffer));
  if (spec.shape === undefined) return flat;
  const shape = String(spec.shape).split(',').map(Number);
  if (shape.length < 2) return flat;
  const rows = [];
  for (let r = 0; r < shape[0]; r++) rows.push(flat.slice(r * shape[1], (r + 1) * shape[1]));
  return rows;
}

function plainArrays(traces) {
  for (const t of traces) {
    for (const [k, v] of Object.entries(t)) {
      if (v && typeof v === 'object' && !Array.isArray(v) && typeof v.bdata === 'string' && DTYPES[v.dtype]) {
        t[k] = decode(v);
      }
    }
  }
  return traces;
}

function axisOf(key) {
  const m = /^([xy]axis\d*)\.(range|autorange)/.exec(key);
  return m ? m[1] : null;
}

function listen(host, st) {
  if (st.listening) return;
  st.listening = true;
  host.on('plotly_relayout', ev => {
    if (st.ours) return;
    for (const [key, value] of Object.entries(ev || {})) {
      const axis = axisOf(key);
      if (!axis) continue;
      if (key.endsWith('autorange') && value === true) {
        st.zoomed[axis] = false;   // double-click: back to the chart's own (decade) range
        st.lastLayout = {};
      } else if (key.indexOf('range') >= 0) {
        st.zoomed[axis] = true;
      }
    }
  });
}

function resync(st, trigger, why) {
  const now = performance.now();
  if (st.askedAt && now - st.askedAt < 1000) return;
  st.askedAt = now;
  st.resyncs = (st.resyncs || 0) + 1;
  trigger('resync', why + ' @' + Math.round(now));
}

async function apply(host, st, data, trigger) {
  const Plotly = await plotly();
  const lacks = st.base !== data.base || st.n.some((v, k) => v < data.since[k]);
  if (data.fig !== undefined && lacks) {
    // The figure as it was at `since` records; the patch below brings it up to date.
    const fig = JSON.parse(data.fig);
    st.ours = true;
    try { await Plotly.react(host, plainArrays(fig.data), fig.layout, CONFIG); } finally { st.ours = false; }
    st.base = data.base; st.n = data.since.slice(); st.lastSet = null; st.lastLayout = {}; st.zoomed = {};
    st.lastR = {};
    st.draws = (st.draws || 0) + 1;
    host.dataset.base = data.base;
    listen(host, st);
  }
  if (st.base !== data.base) { resync(st, trigger, 'base'); return; }
  if (st.n.some((v, k) => v < data.since[k])) { resync(st, trigger, 'records'); return; }
  const e = data.extend;
  if (e) {
    const keys = ['x', 'y', 'z'].filter(k => e[k] !== undefined);
    const update = {}; keys.forEach(k => { update[k] = []; });
    const traces = [];
    st.lastR = st.lastR || {};
    e.traces.forEach((t, j) => {
      // a point is new when its record is past what this chart holds, and past the last one appended
      const have = Math.max(st.n[e.run[j]], t in st.lastR ? st.lastR[t] + 1 : 0);
      const keep = [];
      e.r[j].forEach((r, q) => { if (r >= have) keep.push(q); });
      if (keep.length) st.lastR[t] = e.r[j][keep[keep.length - 1]];
      if (!keep.length) return;
      traces.push(t);
      for (const k of keys) {
        const values = k === 'z' ? e.z[j].map(unpack) : unpack(e[k][j]);
        update[k].push(keep.map(q => values[q]));
      }
    });
    if (traces.length) {
      st.ours = true;
      try { await Plotly.extendTraces(host, update, traces); } finally { st.ours = false; }
      st.extends = (st.extends || 0) + 1;
    }
  }
  st.n = data.n.slice();
  host.dataset.n = st.n.join(',');
  let traceUpdate = {}, traces = [];
  const setKey = data.set ? JSON.stringify(data.set) : null;
  if (setKey !== null && setKey !== st.lastSet) {
    for (const [k, v] of Object.entries(data.set)) {
      if (k === 'traces') continue;
      traceUpdate[k] = (k === 'x' || k === 'y') ? v.map(unpack) : v;
    }
    traces = data.set.traces;
    st.lastSet = setKey;
  }
  const layout = Object.assign({}, data.layout || {});
  for (const [axis, props] of Object.entries(data.ranges || {})) {
    for (const [k, v] of Object.entries(props)) {
      if (st.zoomed[axis] && (k === 'range' || k === 'autorange')) continue;
      layout[axis + '.' + k] = v;
    }
  }
  // Only the layout keys whose value changed: an unchanged annotation or axis range, passed again, still
  // costs Plotly a full re-layout of the chart (most refreshes change only the title).
  const last = st.lastLayout;
  const changed = {};
  for (const [k, v] of Object.entries(layout)) {
    const j = JSON.stringify(v);
    if (last[k] !== j) { changed[k] = v; last[k] = j; }
  }
  const newLayout = Object.keys(changed).length > 0;
  if (traces.length || newLayout) {
    st.ours = true;
    try {
      await Plotly.update(host, traces.length ? traceUpdate : {}, changed, traces.length ? traces : undefined);
    } finally { st.ours = false; }
  }
  st.patches = (st.patches || 0) + 1;
  host.dataset.patches = String(st.patches);
}

// -- when to draw ---------------------------------------------------------------------------------

let turn = Promise.resolve();   // the charts draw one after another, each after an animation frame
const frame = () => new Promise(resolve => {
  if (document.hidden) setTimeout(resolve, 0); else requestAnimationFrame(() => resolve());
});
const hosts = new Set();
let watching = null;

function watch(host, st) {
  if (!watching) {
    watching = new IntersectionObserver(entries => {
      for (const e of entries) {
        const s = e.target.__gfl;
        if (!s) continue;
        s.visible = e.isIntersecting;
        if (s.visible) pump(e.target, s);
      }
    }, {rootMargin: '200px 0px'});
    document.addEventListener('visibilitychange', () => {
      for (const h of Array.from(hosts)) {
        if (!h.isConnected) hosts.delete(h); else pump(h, h.__gfl);
      }
    });
  }
  if (!hosts.has(host)) { hosts.add(host); watching.observe(host); }
}

function applies(st, d) {
  return st.base === d.base && !st.n.some((v, k) => v < d.since[k]);
}

// Where the inbox's newest payload that this chart can apply sits (a full figure always can), or -1.
function newest(st) {
  for (let i = st.inbox.length - 1; i >= 0; i--) {
    if (st.inbox[i].fig !== undefined || applies(st, st.inbox[i])) return i;
  }
  return -1;
}

// That payload, dropping the ones before it; when none applies, the last one (it asks for the full figure).
function pick(st) {
  const i = newest(st);
  return st.inbox.splice(0, i < 0 ? st.inbox.length : i + 1).pop();
}

// Drop now what `pick` would drop, so a chart waiting off-screen keeps a payload or two, not every refresh
// of a long run (not during a draw: it changes what applies).
function prune(st) {
  if (st.busy) return;
  const i = newest(st);
  if (i < 0 && st.inbox.some(d => !d.live)) return;   // due at once: `pick` takes the last one then
  st.inbox.splice(0, i < 0 ? st.inbox.length - 1 : i);
}

// Draw now, or wait until the chart is on screen: only what comes while a run moves may wait.
function due(st) {
  if (st.base === null || st.inbox.some(d => !d.live)) return true;
  return st.visible === true && !document.hidden;
}

function pump(host, st) {
  if (st.busy || !st.inbox.length || !due(st)) return;
  st.busy = true;
  const go = async () => {
    try {
      if (st.base !== null) await frame();   // a chart's first figure is drawn at once: the user waits for it
      while (st.inbox.length && due(st)) {
        const data = pick(st);
        const t0 = performance.now();   // time spent drawing, per kind of chart (bench/bench_ui.py reads it)
        try {
          await apply(host, st, data, st.trigger);
        } catch (err) {
          console.error('live chart:', err);
          st.base = null;   // the next payload asks for the full figure
        }
        const kind = String(data.base || 'other').split('|')[0];
        const cost = window.__gflCost || (window.__gflCost = {});
        const c = cost[kind] || (cost[kind] = {ms: 0, n: 0});
        c.ms += performance.now() - t0; c.n += 1;
      }
    } finally { st.busy = false; }
  };
  turn = turn.then(go, go);
}

export default function (component) {
  const {data, parentElement, setTriggerValue} = component;
  const host = parentElement.querySelector('.gfl-live');
  if (!host || !data) return undefined;
  const st = host.__gfl || (host.__gfl = {base: null, n: [], zoomed: {}, lastLayout: {}, inbox: [], busy: false, visible: null});
  st.trigger = setTriggerValue;
  watch(host, st);
  if (data.preload || data.pending) {
    plotly().catch(err => console.error('live chart:', err));
  } else {
    st.inbox.push(data);
    prune(st);
    pump(host, st);
  }
  // Streamlit calls this when the element goes away (and, for a payload that was overtaken, at once):
  // free the chart only once its node has really left the page.
  return () => setTimeout(() => {
    if (host.isConnected) return;
    hosts.delete(host);
    if (watching) watching.unobserve(host);
    if (window.Plotly) { try { window.Plotly.purge(host); } catch (err) { /* gone */ } }
  }, 2000);
}
