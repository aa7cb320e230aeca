"""One module per API area; each registers its actions with ``@handles("ITERABLE_…")``.

Every module here that does not start with ``_`` is imported when a ``Sandbox`` is created.
"""
