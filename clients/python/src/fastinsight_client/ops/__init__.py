"""Every operation of the API, one function each, grouped as the server's routes are.

Each module declares its ``Route`` constants and the functions that build a ``Call``
from typed arguments. The clients (``FastInsight``, ``AsyncFastInsight``) expose these
functions as methods; nothing here does I/O.
"""
