"""loracfg.runner: executes a compiled plan (run.py), prepares its data (data/), and the Hydra app (train.py)."""
