"""Pydantic models for every request and answer, grouped by subsystem."""
