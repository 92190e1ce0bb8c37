"""Streamlit helpers shared by the pages (core/ never imports Streamlit; this package does).

ui/ binds widgets, session state and layout; it builds no figure (core.figures does) and
computes no statistics or theory (core does). No module here imports plotly.graph_objects or
torch (tests/test_figures.py holds this).

- `ui.nav`: the one page list `PAGES`, `page_file(label)`, `nav()` (the sidebar's links, the one-Stop style).
- `ui.state`: every session key, named once: `SlotKeys(slot)`, `slot(name)` (its defaults set up);
  `enter_page`/`just_arrived` (a link arrives with a page change).
- `ui.share`: settings in the URL — `open_link(keys, page)` (→ `Link`: settings, notes, scenario, autorun),
  `follow_url(keys, link_query(cfg, link))` (the address bar follows the widgets), `config_from_query`,
  `compare_from_query` (clamped to the server's limits), `show_notes`, `explore_query`/`compare_query`/
  `scenario_query` (for st.page_link), `explore_url`/`compare_url` (full links), `share_box`.
- `ui.sidebar`: `sidebar(defaults, key_prefix)` / `config_controls(..., container=)` → RunConfig, its number
  boxes bounded by the server's limits; `set_widgets` (clamped), `reset_widgets`, `suggest` (a verdict's
  button), `widget_values`.
- `ui.story`: `scenario_story(link, shown)`: a scenario's story and what to watch for beside its charts.
- `ui.session`: one Run per page and session — `run_controls`, `start_run`, `stop_run`,
  `current_run`, `is_live`, `status_line`, `server_limits`, `run_slots`, `warm_up_engine`.
- `ui.live`: `live_view(key)` (fragments polling the run), `show_verdict`, `show_main_charts`,
  `show_detail_charts`, `show_theory_preview`, `theory_profile`, `chart(fig, key)` (every page's
  Plotly call), `memo` (figures rebuilt only when a snapshot's version changes).
- `ui.compare`, `ui.theory`, `ui.learn`: each page's own controls, cached core calls and layout.
- `ui.links`: `page_link(page, label, query)`: a link to another page carrying settings.
- `ui.downloads`: `download_buttons(snapshot, key)`, `export_files(snapshot)`, `code_snippets(cfg, key)`.
- `ui.saved`: saved runs that reload — `open_run_file(bytes, name)` (→ SavedRun or Refused),
  `saved_run_box(key, ...)` (the uploader), `show_saved_run(saved, key)`.
- `ui.markdown`: `escape_markdown(text)` for outside text shown in Markdown.

A settings diff is `RunConfig.diff`, a one-line description `RunConfig.describe`.
"""
