"""Response schemas for Iterable's metadata actions."""

__all__: list[str] = []
