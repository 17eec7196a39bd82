"""polar_sync: a local, queryable mirror of a business's Polar customers."""

__version__ = "0.1.0"
