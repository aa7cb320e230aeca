"""Tasks for Iterable's journeys actions."""

__all__: list[str] = []
