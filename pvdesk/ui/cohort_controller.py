"""File ▸ Cohort table: the review project's slides (pvdesk.ui.cohort_dock), opened with
their run. Part of ``ReviewController`` (``controller.cohort``).

The table is read on a ``Tasks`` thread with its own read-only connection to the project
(a store of thousands of slides never holds the GUI). It is read again when a project is
opened, on Refresh and after a run ends. Opening an entry makes its project the one in use
and opens the slide with that entry's run (``SlideContext.want_run``).
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, Qt

from pvdesk.ui.background import Tasks, describe_error
from pvdesk.ui.cohort_dock import CohortDock
from pvdesk.ui.menus import _action


def read_table(project: Path) -> list:
    """Background thread: the project's cohort rows."""
    from pvdesk.cohort.table import cohort_table
    from pvdesk.review.store import ReviewStore

    with ReviewStore(project, readonly=True) as store:
        return cohort_table(store)


class CohortController(QObject):
    def __init__(self, controller):
        super().__init__(controller)
        self.c = controller
        self.w = w = controller.w
        self.tasks = Tasks(self, "pvdesk-cohort")
        self.project: Path | None = None
        self.dock = CohortDock()
        self.dock_widget = w._dock("Cohort", self.dock, "cohort")
        w.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, self.dock_widget)
        self.dock_widget.hide()
        w.view_menu.addAction(self.dock_widget.toggleViewAction())
        self.act = _action(w, "&Cohort table of the review project",
                           tip="The project's slides, those most in need of review first")
        w.file_menu.insertAction(controller.acts["per_slide"], self.act)
        self.act.triggered.connect(self.show)
        controller.acts["project"].triggered.connect(self._after_project)  # after it chose
        self.dock.refresh_requested.connect(self.refresh)
        self.dock.open_requested.connect(self.open_entry)
        w.runs.finished.connect(lambda *_: self.refresh() if self.dock_widget.isVisible()
                                else None)

    def _after_project(self, *_) -> None:
        if self.c.project is not None:
            self.show()

    def show(self) -> None:
        project = self.c.project or self.project
        if project is None:
            self.c.choose_project()
            project = self.c.project
            if project is None:
                return
        self.project = Path(project)
        self.dock_widget.show()
        self.dock_widget.raise_()
        self.w.resizeDocks([self.dock_widget], [480], Qt.Orientation.Horizontal)
        self.refresh()

    def refresh(self) -> None:
        if self.project is None:
            return
        if not self.project.exists():
            self.dock.title.setText(f"{self.project.name}: no slide recorded yet (run "
                                    "`pvdesk predict … --store` on a cohort, or a model here).")
            self.dock.model.set_entries([])
            return
        project = self.project
        self.tasks.start(read_table, project,
                         on_done=lambda entries: self.dock.set_entries(project.name, entries),
                         on_error=lambda exc: self.dock.title.setText(
                             describe_error(exc, f"{project.name}: the cohort table")))

    def open_entry(self, entry) -> None:
        c = self.c
        if c.project != self.project:
            c.project = self.project
            c.acts["per_slide"].setChecked(False)
        c.want_run = entry.run_id
        self.w.open_path(entry.path)
