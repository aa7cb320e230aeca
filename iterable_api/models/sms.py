"""Response schemas for Iterable's sms actions."""

__all__: list[str] = []
