"""Streaming tile inference: reader threads, batched classifiers, progress and cancel.

Qt-free; torch is imported only when a run starts.
"""

from pvdesk.inference.engine import InferenceEngine, Progress
from pvdesk.inference.reader import BatchReader, ReadBatch, tile_pixels
from pvdesk.inference.results import BatchResult, TileResult, tile_source, to_tile_predictions

__all__ = [
    "BatchReader", "BatchResult", "InferenceEngine", "Progress", "ReadBatch", "TileResult",
    "tile_pixels", "tile_source", "to_tile_predictions",
]
