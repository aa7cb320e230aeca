"""Tasks for Iterable's templates actions."""

__all__: list[str] = []
