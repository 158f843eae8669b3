"""One module per verb: ``add_arguments(parser)`` and ``run(args, ctx) -> int``.

These are thin adapters: they turn parsed arguments into a call of the core and render
the result. The core never prints and never exits; it raises :class:`NexusifyError`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from nexusify.config import Settings
from nexusify.ui.output import Output


@dataclass
class Context:
    root: Path
    settings: Settings
    env: Mapping[str, str]
    out: Output

    @property
    def json(self) -> bool:
        return self.out.json_mode
