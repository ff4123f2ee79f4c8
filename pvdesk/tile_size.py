"""A tile's physical size: the default and the accepted range, in micrometres (no imports,
so the command line's argument checks and the bundle manifest check share them cheaply)."""

DEFAULT_TILE_UM = 112.0
TILE_UM_RANGE = (0.5, 100_000.0)  # half a micrometre .. 10 cm
