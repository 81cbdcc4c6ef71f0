"""One module per verb; each exports a function returning the exit code."""
