"""The application layer: Qt-free services between the core and the window.

- :mod:`pvdesk.app.run_session` — a model run off the GUI thread: engine -> review store ->
  tile records and heatmap frames, handed out as small deltas and ready-to-draw images.
- :mod:`pvdesk.app.heatmap_service` — heatmap accumulation and rendering on its own thread.
- :mod:`pvdesk.app.review_service` — the review queue in memory, every action written on a
  writer thread and acknowledged; counts, queue rows and outlines kept by deltas.
- :mod:`pvdesk.app.tile_index` — spatial lookups (tile under a point, tiles in a rectangle).
- :mod:`pvdesk.app.retrain_plan`, :mod:`pvdesk.app.retrain_progress` — retraining's plan
  and the training child's progress protocol.

Everything here reports through :class:`pvdesk.app.events.Event` callbacks, called on the
service's own thread; a GUI marshals them to its thread (pvdesk.ui.background.Relay), a
test or a command-line client simply listens.
"""
