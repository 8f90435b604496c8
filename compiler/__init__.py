"""loracfg.compiler: lint (compose, validate, rules) -> plan (and Hugging Face objects); estimate, sweep, cli."""
