"""Parameters, memory and steps from the config alone (no torch)."""
