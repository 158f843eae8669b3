"""How audit's problems show an index URL (never its credentials, even when it is malformed)
and the failure that made an index unreadable."""

from __future__ import annotations

import re

from nexusify.credentials import mask_url
from nexusify.errors import NexusifyError


def shown_url(url: str) -> str:
    """``url`` without credentials, even when it is too malformed to parse."""
    try:
        return mask_url(url)
    except ValueError:
        return re.sub(r"//[^/@\s]+@", "//***@", url)


def reason(exc: Exception) -> str:
    return exc.message if isinstance(exc, NexusifyError) else (str(exc) or type(exc).__name__)
