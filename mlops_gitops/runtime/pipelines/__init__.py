"""Running pipeline jobs locally: resolved steps in, reused or executed steps out."""
