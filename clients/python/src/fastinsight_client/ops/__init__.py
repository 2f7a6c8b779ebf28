"""Every operation of the API, one function each, grouped as the server's routes are.

Each module declares its ``Route`` constants and the functions that build a ``Call``
from typed arguments. The clients (``FastInsight``, ``AsyncFastInsight``) expose these
functions as methods; nothing here does I/O.

A body may be given as its model or as a mapping. A mapping is sent as it is, so what
is wrong with it comes back from the server as ``ValidationFailedError`` naming each
field, the same as for any other invalid input.
"""
