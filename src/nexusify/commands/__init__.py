"""One module per verb: ``add_arguments(parser)`` and ``run(args, ctx) -> int``.

These are thin adapters: they turn parsed arguments into a call of the core and render
the result. The core never prints and never exits; it raises :class:`NexusifyError`.

Every verb that reports problems ends with :meth:`Context.verdict`, the one exit-code rule:
errors exit 1; warnings exit 0, or 1 under ``--strict``; nothing found exits 0. (Usage and
configuration errors exit 2 through :class:`~nexusify.errors.UsageError`/``ConfigError``.)
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nexusify.config import Settings
from nexusify.ui.envelope import envelope
from nexusify.ui.output import Output


@dataclass
class Context:
    root: Path
    settings: Settings
    env: Mapping[str, str]
    out: Output
    strict: bool = False
    verb: str | None = None

    @property
    def json(self) -> bool:
        return self.out.json_mode

    def verdict(self, errors: int, warnings: int = 0) -> int:
        """The exit code for a run that found ``errors`` and ``warnings`` (see the module docstring)."""
        return verdict(errors, warnings, strict=self.strict)

    def emit(self, data: Mapping[str, Any], exit_code: int, *, errors: Iterable[Any] | None = None,
             warnings: Iterable[Any] | None = None) -> int:
        """Print ``data`` as the JSON envelope every verb shares (:mod:`nexusify.ui.envelope`);
        returns ``exit_code``. Without ``errors``/``warnings``: the ``problems`` of ``data``."""
        self.out.json(envelope(self.verb, data, exit_code=exit_code, errors=errors, warnings=warnings))
        return exit_code


def verdict(errors: int, warnings: int, *, strict: bool) -> int:
    if errors:
        return 1
    return 1 if warnings and strict else 0


def add_strict(parser: argparse.ArgumentParser) -> None:
    """``--strict`` for a verb that reports problems: warnings exit 1 too (see :func:`verdict`)."""
    parser.add_argument("--strict", action="store_true",
                        help="exit 1 when warnings were found too (default: errors exit 1, warnings 0)")


def add_index_auth(parser: argparse.ArgumentParser) -> None:
    """``--index-auth/--no-index-auth``, one meaning for every verb that installs from the index
    (rewrite writes it into Dockerfiles, verify installs and builds that way)."""
    parser.add_argument("--index-auth", action=argparse.BooleanOptionalAction, default=None,
                        help="the index needs credentials to download: install steps mount a netrc BuildKit "
                             "secret, and verify logs in (default: when credentials are configured); "
                             "--no-index-auth: anonymous downloads")
