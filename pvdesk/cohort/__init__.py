"""Cohorts: ``pvdesk predict`` over many slides, resumable, locally or on a Ray cluster.

- :mod:`~pvdesk.cohort.inputs` — paths, folders, globs and list files into the cohort's inputs.
- :mod:`~pvdesk.cohort.work` — what computing one slide is (the same in every backend).
- :mod:`~pvdesk.cohort.backends` — the Backend interface and the local backend;
  :mod:`~pvdesk.cohort.ray_backend` — the Ray backend (Ray imported there only).
- :mod:`~pvdesk.cohort.driver` — runs a backend and alone writes outputs, store and
  ``cohort.csv`` (:mod:`~pvdesk.cohort.cohort_csv`); resume state in
  :mod:`~pvdesk.cohort.state`.
- :mod:`~pvdesk.cohort.table` — the rows of a review project's cohort table (for the window).
"""
