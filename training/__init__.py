"""Retraining and evaluation for pvdesk."""
