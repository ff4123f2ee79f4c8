"""`S` in review mode: select the tiles most like the current tile (or the selection).

The search (pvdesk.app.similar, exact cosine over the run's stored embeddings) runs off the
GUI thread through ``Tasks``, on its own read-only connection to the slide's store; the
answer comes back as tile ids, which join the review selection together with the query
tiles, so the next label key labels them all (Esc clears the selection).
"""

from __future__ import annotations

from PySide6.QtCore import QObject

from pvdesk.app.similar import DEFAULT_K
from pvdesk.ui.background import Tasks, describe_error


class SimilarAction(QObject):
    def __init__(self, controller, k: int = DEFAULT_K):
        super().__init__(controller)
        self.c = controller
        self.k = k
        self.tasks = Tasks(self, name="pvdesk-similar")
        self._services: dict[str, object] = {}  # store path -> SimilarTiles (own connection)
        self.last: list = []  # the last answer's Neighbours (tests, status)

    def _say(self, text: str, ms: int = 8000) -> None:
        self.c.w.status.showMessage(text, ms)

    def start(self) -> bool:
        s, store = self.c.session, self.c.store
        if s is None or store is None or s.run_id is None:
            self._say("Similar tiles: nothing to search yet (run a model with embeddings kept).")
            return True
        query = s.targets()
        if not query:
            return True
        if self.tasks.busy:
            return True
        self._say(f"Finding the {self.k} tiles most like {len(query)} tile(s)…", 0)
        self.tasks.start(self._search, str(store.path), s.run_id, s.slide_id, query,
                         on_done=lambda found: self._done(s, query, found),
                         on_error=self._failed)
        return True

    def _search(self, path: str, run_id: int, slide_id: str, query: list[int]):
        from pvdesk.app.similar import SimilarTiles
        from pvdesk.review.store import ReviewStore

        svc = self._services.get(path)
        if svc is None:
            svc = self._services[path] = SimilarTiles(ReviewStore(path, readonly=True))
        return svc.similar(run_id, query, self.k, slide_id=slide_id)

    def _done(self, session, query: list[int], found) -> None:
        s = self.c.session
        if s is not session:  # another slide or run since: the answer is stale
            return
        self.last = list(found)
        ids = [n.tile_id for n in found if n.tile_id in s.all]
        s.toggle([t for t in list(query) + ids if t not in s.selection])
        self.c.sync.refresh(center=False)
        if not ids:
            self._say("Similar tiles: none found.")
            return
        lo, hi = found[-1].score, found[0].score
        self._say(f"{len(ids)} tiles like this one selected (cosine {hi:.2f}–{lo:.2f}): a label "
                  f"key labels all {len(s.selection)}; Esc clears the selection.", 15000)

    def _failed(self, exc) -> None:
        self._say(describe_error(exc, "Similar tiles"), 12000)

    def shutdown(self) -> None:
        self.tasks.shutdown(5.0)
        for svc in self._services.values():
            svc.store.close()
        self._services.clear()
