"""Tasks for Iterable's catalogs actions."""

__all__: list[str] = []
