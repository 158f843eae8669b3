"""Cross-verb agreement on real monorepos (issue 19): for every checkout under a corpus folder (the
ecosystem corpus: <corpus>/<owner>+<name>/), audit's consumers = rewrite's targets (and the consumers
that stay in their uv workspace) = verify's rows = affected's universe for a change to every shared
package, and the Dockerfiles each consumer's verdicts judge are the ones the model attaches.
Read-only: each checkout is copied first. Exit 1 on any disagreement.

    PYTHONPATH=src python scripts/agreement.py --corpus /work/corpus
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

from nexusify.affected import Changed, expand
from nexusify.config import resolve_settings
from nexusify.formats.dockerfile_rules import judge_project
from nexusify.formats.shared_code import SharedCode
from nexusify.model import load_workspace, relpath
from nexusify.rewrite.plan import plan_rewrite
from nexusify.verify import select_consumers

ENV = {"HOME": "/nonexistent", "NO_COLOR": "1"}


def check(repo: Path) -> list[str]:
    with tempfile.TemporaryDirectory(prefix="nexusify-agree-") as tmp:
        root = Path(tmp) / "repo"
        shutil.copytree(repo, root, symlinks=True, ignore=shutil.ignore_patterns(".git"))
        ws = load_workspace(root)
        model = {p.rel(ws.root) for p in ws.consumers()}
        plan = plan_rewrite(resolve_settings(root, {"index_url": "http://127.0.0.1:9/simple/"}, ENV), [],
                            env=ENV, lock=False)
        seen = {"rewrite": {sp.rel for sp in plan.services} | set(plan.staying),
                "verify": {p.rel(ws.root) for p in select_consumers(ws, [])} if model else set(),
                "affected": {c.path for c in expand(ws, [Changed(p.name or "", p.rel(ws.root), "-")
                                                         for p in ws.shared() if p.name], "-").consumers}}
        out = [f"{verb}: {sorted(found ^ model)} differ from audit's consumers"
               for verb, found in seen.items() if found != model]
        shared = SharedCode.from_workspace(ws)
        for p in ws.consumers():
            judged = sorted(j.rel for j in judge_project(p, ws.root, shared))
            attached = sorted({relpath(b.dockerfile, ws.root) for b in ws.dockerfiles_of(p)})
            if judged != attached:
                out.append(f"{p.rel(ws.root)}: judged {judged}, attached {attached}")
        return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, required=True, help="folder holding <owner>+<name>/ checkouts")
    args = parser.parse_args(argv)
    failed = 0
    for repo in sorted(p for p in args.corpus.iterdir() if p.is_dir()):
        problems = check(repo)
        failed += bool(problems)
        print(f"{'ok ' if not problems else 'DIFF'} {repo.name}" + "".join(f"\n     {x}" for x in problems))
    print(f"{failed} repositories where the verbs disagree")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
