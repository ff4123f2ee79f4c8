"""Reading samples as pixels, through pvdesk's slide sources.

:class:`DatasetSource` presents a list of samples as a pvdesk Source whose tiles are the
samples, so that pvdesk's InferenceEngine (reader threads, batching, unreadable-tile
handling) computes embeddings and predictions for a dataset exactly as it does for a
slide. Patch images are decoded and resized like PatchFolderSource does; slide regions
are read at the pyramid level a tile grid would use and resized the same way.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
from PIL import Image

from pvdesk.slides import open_source
from pvdesk.slides.base import PyramidSource, Source, Tile
from pvdesk.slides.image_source import load_rgb
from pvdesk.tiling import TileGrid
from training.data.samples import Sample


class SampleReader:
    """Reads samples at a square size; keeps one open handle per slide (not thread-safe:
    one reader per thread or worker process)."""

    def __init__(self):
        self._slides: dict[str, PyramidSource] = {}
        self._h5: dict[str, object] = {}  # open HDF5 files of patches (PCam)

    def _slide(self, path: str) -> PyramidSource:
        src = self._slides.get(path)
        if src is None:
            src = open_source(path)
            if not isinstance(src, PyramidSource):
                src.close()
                from pvdesk.errors import SlideError

                raise SlideError(path, "tile coordinates given, but this is not a slide or image")
            self._slides[path] = src
        return src

    def image(self, s: Sample, size: int) -> Image.Image:
        """The sample as an RGB image of ``size`` x ``size`` (bilinear, like pvdesk)."""
        if s.index is not None:
            img = self._patch(s)
        elif s.region is None:
            img = load_rgb(s.path)
        else:
            src = self._slide(s.path)
            x, y, w, h = s.region
            level = src.best_level_for_downsample(max(w, h) / size)
            tile = Tile(0, x, y, w, h)
            img = src.read_tile(tile, SimpleNamespace(level=level, out_size=size))
        if img.mode != "RGB":
            img = img.convert("RGB")
        if img.size != (size, size):
            img = img.resize((size, size), Image.Resampling.BILINEAR)
        return img

    def array(self, s: Sample, size: int) -> np.ndarray:
        """(3, size, size) uint8."""
        return np.asarray(self.image(s, size), dtype=np.uint8).transpose(2, 0, 1)

    def _patch(self, s: Sample) -> Image.Image:
        """Patch ``s.index`` of an HDF5 file's ``x`` dataset, read on its own (lazily)."""
        f = self._h5.get(s.path)
        if f is None:
            from pvdesk import heavy

            f = self._h5[s.path] = heavy.h5py().File(s.path, "r")
        return Image.fromarray(np.asarray(f["x"][s.index], dtype=np.uint8), "RGB")

    def close(self) -> None:
        for src in self._slides.values():
            src.close()
        self._slides.clear()
        for f in self._h5.values():
            f.close()
        self._h5.clear()


class DatasetSource(Source):
    """The samples of a dataset as a pvdesk Source (one tile per sample, in order)."""

    kind = "dataset"

    def __init__(self, samples: list[Sample], origin: str = "dataset"):
        super().__init__(origin)
        self.samples = list(samples)
        self._reader = SampleReader()

    @property
    def slide_id(self) -> str:
        return f"dataset-{len(self.samples)}"

    def tiles(self) -> list[Tile]:
        return [Tile(index=i, patch=s.key, folder_class=s.label)
                for i, s in enumerate(self.samples)]

    def grid(self, size: int) -> TileGrid:
        tiles = self.tiles()
        return TileGrid(tiles, size, total_positions=len(tiles), units="patch")

    def thumbnail(self, max_size: int = 1024, progress=None) -> Image.Image:
        return Image.new("RGB", (max_size, max_size), (255, 255, 255))

    def read_tile(self, tile: Tile, grid) -> Image.Image:
        return self._reader.image(self.samples[tile.index], grid.out_size)

    def clone(self) -> DatasetSource:
        return DatasetSource(self.samples, str(self.path))

    def close(self) -> None:
        self._reader.close()
