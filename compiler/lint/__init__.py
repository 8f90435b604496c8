"""Stage 1: compose (Hydra), validate (JSON Schema), rules; diagnostics and their rendering."""
