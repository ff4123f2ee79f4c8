"""Whole-slide files read by OpenSlide (SVS, NDPI, MRXS, SCN, tiled TIFF, DICOM ...)."""

from __future__ import annotations

import threading

from PIL import Image

from pvdesk.errors import CorruptSlideError, RegionReadError
from pvdesk.slides.base import MAX_REGION_PX, WHITE, PyramidSource, content_id
from pvdesk.slides.limits import check_slide_file

PLAUSIBLE_MPP = (0.05, 20.0)  # microns per pixel a microscope slide can have


def _openslide():
    import openslide  # lazy: loads the native library

    return openslide


def detect_vendor(path) -> str | None:
    """OpenSlide's vendor for a file, or None when OpenSlide does not read it.

    Call ``limits.check_slide_file`` first: OpenSlide's probes open the file (and, for
    some formats, its companions) and trust the sizes its header claims.
    """
    try:
        return _openslide().OpenSlide.detect_format(str(path))
    except Exception:
        return None


class OpenSlideSource(PyramidSource):
    kind = "slide"

    def __init__(self, path, mpp: float | None = None, vendor: str | None = None):
        super().__init__(path, mpp)
        self._lock = threading.Lock()
        check_slide_file(self.path)  # sizes and file kinds, before OpenSlide sees the file
        self._vendor = vendor or detect_vendor(path) or "unknown"
        self._slide = self._open()
        self._id: str | None = None
        self._check_readable()

    def _open(self):
        osl = _openslide()
        try:
            return osl.OpenSlide(str(self.path))
        except (osl.OpenSlideError, OSError, ValueError) as exc:
            raise CorruptSlideError(self.path, f"OpenSlide cannot open it ({exc})") from None

    def _check_readable(self) -> None:
        """Read a pixel of the coarsest level at its centre and corners: a file none of
        whose pixels decode fails here, not mid-review. One damaged tile (a corner) does
        not refuse the slide: its region is reported as unreadable later."""
        level = self._slide.level_count - 1
        lw, lh = self._slide.level_dimensions[level]
        ds = self._slide.level_downsamples[level]
        spots = [(lw // 2, lh // 2), (0, 0), (lw - 1, 0), (0, lh - 1), (lw - 1, lh - 1)]
        first = None
        for sx, sy in spots:
            try:
                self._slide.read_region((round(sx * ds), round(sy * ds)), level, (1, 1))
                return
            except Exception as exc:
                first = first or exc
                try:  # OpenSlide errors stick to a handle
                    self._slide.close()
                    self._slide = self._open()
                except Exception:  # noqa: BLE001 - reported below with the first error
                    break
        try:
            self._slide.close()
        except Exception:  # noqa: BLE001 - already failing; the message says why
            pass
        raise CorruptSlideError(self.path, f"the slide opens but its pixels cannot be read "
                                           f"({first})") from None

    # metadata ----------------------------------------------------------------
    @property
    def slide_id(self) -> str:
        if self._id is None:
            self._id = content_id(self.path)
        return self._id

    @property
    def vendor(self) -> str:
        return self._vendor

    @property
    def native_mpp(self) -> float | None:
        props = self._slide.properties
        try:
            x = float(props.get("openslide.mpp-x", "nan"))
            y = float(props.get("openslide.mpp-y", "nan"))
        except ValueError:
            return None
        mpp = (x + y) / 2 if y > 0 else x
        # A TIFF's default 72 dpi reads as ~353 um/px: not a microscope scale, so unknown.
        return mpp if PLAUSIBLE_MPP[0] <= mpp <= PLAUSIBLE_MPP[1] else None

    @property
    def objective_power(self) -> float | None:
        try:
            return float(self._slide.properties["openslide.objective-power"])
        except (KeyError, ValueError):
            return None

    @property
    def level_dimensions(self):
        return list(self._slide.level_dimensions)

    @property
    def level_downsamples(self):
        return list(self._slide.level_downsamples)

    # pixels ------------------------------------------------------------------
    def read_region(self, location, level, size) -> Image.Image:
        osl = _openslide()
        w, h = size
        if w * h > MAX_REGION_PX:
            raise RegionReadError(self.path, f"a {w} x {h} px region is too large to read at "
                                             f"once (at most {MAX_REGION_PX} px)")
        with self._lock:
            try:
                rgba = self._slide.read_region(location, level, size)
            except MemoryError:
                raise RegionReadError(self.path, f"not enough memory to read a {w} x {h} px "
                                                 f"region at {location} level {level}") from None
            except osl.OpenSlideError as exc:
                # OpenSlide errors stick to a handle: reopen so later reads can succeed.
                try:
                    self._slide.close()
                finally:
                    self._slide = self._open()
                raise RegionReadError(
                    self.path, f"cannot read region at {location} level {level} ({exc})"
                ) from None
        out = Image.new("RGB", rgba.size, WHITE)
        out.paste(rgba, mask=rgba.getchannel("A"))
        return out

    def associated_image_names(self) -> list[str]:
        return sorted(self._slide.associated_images)

    def associated_image(self, name: str) -> Image.Image:
        """Explicit access only: label and macro images can show patient names."""
        return self._slide.associated_images[name].convert("RGB")

    def clone(self) -> OpenSlideSource:
        return OpenSlideSource(self.path, self._mpp_override, self._vendor)

    def close(self) -> None:
        self._slide.close()
