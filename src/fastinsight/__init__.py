"""FastInsight: a self-hosted recommendation and customer-insight service."""

__version__ = "0.1.0"
