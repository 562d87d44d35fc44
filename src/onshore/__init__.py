"""onshore: an S3-compatible object store for sovereign cloud regions."""

__version__ = "0.1.0"
__all__ = ["__version__"]
