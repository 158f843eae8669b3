"""Optional parts of nexusify: the base install runs audit, publish, rewrite and verify; deploy and
the demo need extras. A verb whose extra is missing exits 2 naming the pip command."""

from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType

from nexusify.errors import ExtraMissing

#: extra name -> the top-level modules it brings
EXTRAS: dict[str, tuple[str, ...]] = {
    "deploy": ("docker", "boto3", "alembic", "sqlalchemy"),
    "demo": ("pypiserver", "passlib"),
}


def require(extra: str, module: str) -> ModuleType:
    """Import ``module`` (part of ``extra``) or raise :class:`ExtraMissing` with the install command."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ExtraMissing(
            f"this needs nexusify's '{extra}' extra ({module} is not installed: {exc})",
            hint=f"python -m pip install 'nexusify[{extra}]'",
        ) from exc


def missing(extra: str) -> list[str]:
    """The modules of ``extra`` that are not installed here (empty when it is), found without
    importing them."""
    return [module for module in EXTRAS[extra] if importlib.util.find_spec(module) is None]
