"""pvdesk: desktop review of breast histopathology."""
__version__ = "0.1.0"
