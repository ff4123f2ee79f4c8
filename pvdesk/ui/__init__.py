"""The desktop application (PySide6): widgets, views and workers over the Qt-free core."""
