"""Exports of review stores and predictions: CSV (clip_predictions.csv) and GeoJSON (QuPath).

All files are written atomically (:mod:`pvdesk.export.atomic`)."""

from pvdesk.errors import PvdeskError


class ExportError(PvdeskError):
    """An export or import file cannot be written or read."""
