"""Generated parts of the documentation (``docs/``), so the reference can't drift from the code.

``python -m nexusify.docs`` rewrites every block between ``<!-- BEGIN GENERATED: name -->`` and
``<!-- END GENERATED: name -->`` in the pages that hold them (:data:`PAGES`, or the files given);
``--check`` exits 1 when one is out of date (a test runs it).
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable
from pathlib import Path

from nexusify.commands.verbs import verbs_markdown
from nexusify.config import config_reference_markdown


def _rst_to_md(text: str) -> str:
    return text.replace("``", "`")


def deploy_reference_markdown() -> str:
    """The deploy keys, from the documented example and key lists of ``deploy.config``."""
    from nexusify.deploy import config as deploy_config

    doc = deploy_config.__doc__ or ""
    example_start = doc.index("::\n") + 3
    example_end = doc.index("\nTop-level keys")
    example = "\n".join(line[4:] if line.startswith("    ") else line
                        for line in doc[example_start:example_end].strip("\n").splitlines())
    keys = doc[example_end:].strip()
    return "```toml\n" + example.rstrip() + "\n```\n\n" + _rst_to_md(keys)


GENERATORS: dict[str, Callable[[], str]] = {
    "verbs": verbs_markdown,
    "settings": config_reference_markdown,
    "deploy-keys": deploy_reference_markdown,
}

#: the pages holding generated blocks, relative to the repository root
PAGES = (Path("docs/commands.md"), Path("docs/configuration.md"))

_BLOCK = re.compile(r"(<!-- BEGIN GENERATED: (?P<name>[\w-]+) -->\n)(?P<body>.*?)(<!-- END GENERATED: (?P=name) -->)", re.S)


def render(text: str) -> str:
    def sub(m: re.Match[str]) -> str:
        name = m.group("name")
        if name not in GENERATORS:
            raise KeyError(f"no generator for block {name!r}")
        return m.group(1) + GENERATORS[name]().rstrip("\n") + "\n" + m.group(4)

    return _BLOCK.sub(sub, text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m nexusify.docs", description=__doc__)
    parser.add_argument("files", type=Path, nargs="*", help=f"default: {', '.join(map(str, PAGES))}")
    parser.add_argument("--check", action="store_true", help="exit 1 when a file is out of date")
    args = parser.parse_args(argv)
    stale = []
    for file in args.files or list(PAGES):
        text = file.read_text(encoding="utf-8")
        new = render(text)
        if new == text:
            continue
        if args.check:
            stale.append(str(file))
        else:
            file.write_text(new, encoding="utf-8")
    if stale:
        print(f"{', '.join(stale)} out of date: run python -m nexusify.docs", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
