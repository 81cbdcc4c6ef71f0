"""Plan renderers: coloured text for terminals, Markdown for pull requests, JSON for machines."""
