"""A single ordinary image (PNG, JPEG, plain TIFF ...) treated as a one-level slide."""

from __future__ import annotations

import warnings

from PIL import Image

from pvdesk.errors import CorruptSlideError, RegionReadError, SlideError, UnsupportedFormatError
from pvdesk.slides.base import MAX_REGION_PX, WHITE, PyramidSource, content_id
from pvdesk.slides.limits import open_regular

_MAGIC = {b"\x89PNG": "PNG", b"\xff\xd8\xff": "JPEG", b"II*\x00": "TIFF", b"MM\x00*": "TIFF",
          b"BM": "BMP"}


def _magic_kind(path) -> str | None:
    try:
        with open_regular(path) as fh:
            head = fh.read(8)
    except (OSError, SlideError):
        return None
    return next((kind for magic, kind in _MAGIC.items() if head.startswith(magic)), None)


def load_rgb(path) -> Image.Image:
    """Decode an image file fully to RGB, turning every decoder failure into a typed error.

    The file must be a regular file (a FIFO or device is refused, never waited on);
    images over Pillow's decompression-bomb limit are refused.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Pillow's notes on damaged files (corrupt EXIF)
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with open_regular(path) as fh, Image.open(fh) as im:
                im.load()
                if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
                    rgba = im.convert("RGBA")
                    out = Image.new("RGB", rgba.size, WHITE)
                    out.paste(rgba, mask=rgba.getchannel("A"))
                    return out
                return im.convert("RGB")
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise CorruptSlideError(path, f"image too large to decode safely ({exc})") from None
    except Image.UnidentifiedImageError:
        kind = _magic_kind(path)
        if kind:
            raise CorruptSlideError(path, f"the {kind} image is damaged or truncated "
                                          "(its header cannot be decoded)") from None
        raise UnsupportedFormatError(
            path, "not an image or slide format pvdesk reads (the content is not PNG, JPEG, "
                  "TIFF or a whole-slide format, whatever the extension says)") from None
    except MemoryError:
        raise CorruptSlideError(path, "not enough memory to decode the image") from None
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        raise CorruptSlideError(path, f"the image is damaged or truncated ({exc})") from None


class ImageSource(PyramidSource):
    kind = "image"

    def __init__(self, path, mpp: float | None = None, image: Image.Image | None = None):
        super().__init__(path, mpp)
        self._img = image if image is not None else load_rgb(self.path)
        self._id: str | None = None

    @property
    def slide_id(self) -> str:
        if self._id is None:
            self._id = content_id(self.path)
        return self._id

    @property
    def vendor(self) -> str:
        return "image"

    @property
    def level_dimensions(self):
        return [self._img.size]

    @property
    def level_downsamples(self):
        return [1.0]

    def read_region(self, location, level, size) -> Image.Image:
        x, y = location
        w, h = size
        if w * h > MAX_REGION_PX:
            raise RegionReadError(self.path, f"a {w} x {h} px region is too large to read at "
                                             f"once (at most {MAX_REGION_PX} px)")
        iw, ih = self._img.size
        out = Image.new("RGB", (w, h), WHITE)
        box = (max(x, 0), max(y, 0), min(x + w, iw), min(y + h, ih))
        if box[0] < box[2] and box[1] < box[3]:
            out.paste(self._img.crop(box), (box[0] - x, box[1] - y))
        return out

    def clone(self) -> ImageSource:
        # The decoded pixels are immutable here: share them instead of decoding again.
        return ImageSource(self.path, self._mpp_override, self._img)
