"""Hydra multiruns: points, the lint-every-point callback, the sweep report."""
