"""The one place the version is written: pyproject.toml reads it (dynamic), so does the package."""

__version__ = "0.1.0"
