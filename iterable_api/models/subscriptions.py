"""Response schemas for Iterable's subscriptions actions."""

__all__: list[str] = []
