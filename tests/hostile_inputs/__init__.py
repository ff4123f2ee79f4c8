"""Builders of hostile and damaged inputs, made in the test run (nothing large is committed):
slides, review stores, CSV and GeoJSON files, model bundles, one module per kind. Shared by the
unit tests and the hostile-input suite (tests/test_hostile_suite.py).

Every builder writes into a folder it is given and returns the path to hand to pvdesk.
Large slides are sparse TIFFs (tiles with no bytes): kilobytes on disk.
"""

from .bundles import (
    Payload,
    bundle_inputs,
    good_bundle,
    pickle_checkpoint_bundle,
    safetensors_bytes,
)
from .common import HAS_FIFO, make_fifo
from .csv_files import BAD_CSV_CELLS, CSV_CLASSES, csv_inputs, csv_row, good_csv, write_csv
from .geojson import geojson_inputs
from .slides import patch_tags, slide_inputs, small_pyramid
from .stores import MAY_OPEN, good_store, store_inputs

__all__ = [
    "BAD_CSV_CELLS", "CSV_CLASSES", "HAS_FIFO", "MAY_OPEN", "Payload", "bundle_inputs",
    "csv_inputs", "csv_row", "geojson_inputs", "good_bundle", "good_csv", "good_store",
    "make_fifo", "patch_tags", "pickle_checkpoint_bundle", "safetensors_bytes", "slide_inputs",
    "small_pyramid", "store_inputs", "write_csv",
]
