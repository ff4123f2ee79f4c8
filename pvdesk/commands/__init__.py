"""Headless verbs of the pvdesk command line, one module each."""
