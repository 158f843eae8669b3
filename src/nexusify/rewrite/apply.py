"""Writing a rewrite plan: all files atomically, or none."""

from __future__ import annotations

from nexusify.errors import OperationFailed, ProblemsFound
from nexusify.rewrite.plan_data import FilePlan, RewritePlan
from nexusify.transaction import write_files


def apply_plan(plan: RewritePlan) -> list[FilePlan]:
    """Write every changed file of ``plan`` atomically, or nothing (see the module docstring)."""
    if plan.errors:
        raise ProblemsFound(
            f"{len(plan.errors)} problem(s) prevent the rewrite; nothing was written:\n  "
            + "\n  ".join(str(p) for p in plan.errors),
            hint="fix them and re-run; `nexusify rewrite --json` lists every edit and problem",
        )
    files = plan.files
    for f in files:
        if f.old == b"" and not f.path.exists():
            continue  # a file the plan creates (a moved uv workspace member's own uv.lock)
        try:
            current = f.path.read_bytes()
        except OSError as exc:
            raise OperationFailed(f"{f.rel}: cannot read it again before writing ({exc.strerror})",
                                  path=f.rel, hint="nothing was written") from exc
        if current != f.old:
            raise OperationFailed(f"{f.rel} changed while the rewrite was being planned", path=f.rel,
                                  hint="nothing was written; re-run the rewrite")
    write_files(plan.root, [(f.path, f.new) for f in files], command="rewrite")
    return files


__all__ = ["apply_plan"]
