"""`nexusify history` (not implemented yet)."""

from __future__ import annotations

import argparse

from nexusify.commands import Context
from nexusify.errors import NotImplementedYet

HELP = "history (not implemented yet)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    del parser


def run(args: argparse.Namespace, ctx: Context) -> int:
    del args, ctx
    raise NotImplementedYet("`nexusify history` is not implemented yet", hint="see the CHANGELOG for what has landed")
