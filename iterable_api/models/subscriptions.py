"""Response schemas for Iterable's subscription-group actions.

Subscribing or unsubscribing one user answers 202 with Iterable's plain envelope, read as
``ApiResponse``; this area needs no schema of its own.
"""

__all__: list[str] = []
