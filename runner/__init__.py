"""Executes a compiled plan (lands with the runner issue)."""
