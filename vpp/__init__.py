"""vpp: a virtual power plant aggregation simulator."""

__all__: list[str] = []
