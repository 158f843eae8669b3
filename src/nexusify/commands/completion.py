"""`nexusify completion bash|zsh|fish`: print a shell completion script (argcomplete)."""

from __future__ import annotations

import argparse

from argcomplete.shell_integration import shellcode

from nexusify.commands import Context


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("shell", choices=("bash", "zsh", "fish"), help="the shell to complete in")


def run(args: argparse.Namespace, ctx: Context) -> int:
    ctx.out.console.file.write(shellcode(["nexusify"], shell=args.shell))
    return 0
