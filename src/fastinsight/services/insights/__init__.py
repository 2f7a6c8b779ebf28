"""Insights: daily rollups, analytics, audiences and segments."""
