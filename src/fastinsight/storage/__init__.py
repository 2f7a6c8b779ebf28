"""Persistence. MongoDB is the source of truth; see :mod:`fastinsight.storage.mongo`."""
