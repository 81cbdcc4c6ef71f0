"""Monitoring signals: drift and data quality of production data against reference data."""
