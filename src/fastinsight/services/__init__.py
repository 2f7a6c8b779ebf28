"""Business logic as plain Python: no FastAPI imports below this package."""
