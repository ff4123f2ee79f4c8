"""Exports of review stores and predictions: CSV (clip_predictions.csv) and GeoJSON (QuPath),
and the way back (:mod:`pvdesk.export.csv_import`, :mod:`pvdesk.export.geojson_import`;
what pvdesk and QuPath agree on is in :mod:`pvdesk.export.qupath`).

All files are written atomically (:mod:`pvdesk.export.atomic`)."""

from pvdesk.errors import PvdeskError


class ExportError(PvdeskError):
    """An export or import file cannot be written or read."""
