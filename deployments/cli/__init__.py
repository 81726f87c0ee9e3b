"""``p4integ``, the command line: ``deployments.cli:main``."""
from .main import app, main

__all__ = ["app", "main"]
