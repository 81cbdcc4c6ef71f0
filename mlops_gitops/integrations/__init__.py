"""CI systems and code hosts: GitHub (github3.py), Azure Pipelines logging commands, pre-commit."""
