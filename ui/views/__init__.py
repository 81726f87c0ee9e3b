"""One module a page; each only draws, through ui.backend.

Not called ``pages``: Streamlit would also load a ``pages/`` folder beside the entry
script as pages of its own, bypassing the sign-in gate on a first request.
"""
from pathlib import Path

VIEWS = Path(__file__).resolve().parent
