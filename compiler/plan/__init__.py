"""Stage 2: the version-neutral plan, specialized to the installed Hugging Face libraries."""
