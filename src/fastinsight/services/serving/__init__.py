"""Serving: the active model version, real-time events, rules, and the recommend service."""
