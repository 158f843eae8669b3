"""The loaded monorepo: its projects, problems, and the dependency graph's questions (publish
order, cycles, transitive closure, edges), answered in one place for every verb."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from nexusify.errors import Problem
from nexusify.model.graph import cycle_through, strongly_connected
from nexusify.model.project import DockerBuild, Project


@dataclass
class Workspace:
    root: Path
    projects: list[Project]
    problems: list[Problem]
    by_name: dict[str, Project]
    broken: set[Path] = field(default_factory=set)  # folders whose pyproject.toml could not be read
    duplicates: set[str] = field(default_factory=set)  # normalised names two projects claim
    unmatched_builds: list[DockerBuild] = field(default_factory=list)  # Dockerfiles that build no project
    _by_path: dict[Path, Project] = field(default_factory=dict, repr=False)
    _deps_cache: dict[tuple[str, bool], list[str]] = field(default_factory=dict, repr=False)

    @property
    def shared(self) -> list[Project]:
        return [p for p in self.projects if p.role == "shared"]

    @property
    def services(self) -> list[Project]:
        return [p for p in self.projects if p.role == "service"]

    def project_at(self, folder: Path) -> Project | None:
        if not self._by_path:
            self._by_path = {p.path: p for p in self.projects}
        return self._by_path.get(Path(os.path.normpath(folder.resolve())))

    def owner_of(self, file: Path) -> Path | None:
        """The folder of the project (or unreadable project) a file belongs to: its nearest
        ancestor that is a project folder."""
        for folder in [file, *file.parents]:
            if folder in self._folders:
                return folder
            if folder == self.root:
                break
        return None

    @cached_property
    def _folders(self) -> frozenset[Path]:
        """Every project folder, unreadable ones included (built once: owner_of runs per problem)."""
        return frozenset({p.path for p in self.projects} | self.broken)

    def unreadable_errors(self) -> list[Problem]:
        """The errors of folders whose manifest cannot be read: for verbs acting on "everything",
        where such a folder may be one of their targets."""
        return [p for p in self.problems if p.severity == "error" and p.path is not None
                and self.owner_of(self.root / p.path) in self.broken]

    def unnamed_shared_errors(self) -> list[Problem]:
        """The errors of shared packages without a name: no name reaches them, so a verb acting on
        every shared package (publish) must stop on them instead of skipping them."""
        unnamed = {p.path for p in self.shared if not p.name}
        return [p for p in self.problems if p.severity == "error" and p.path is not None
                and self.owner_of(self.root / p.path) in unnamed]

    def reached_folders(self, targets: Iterable[Project]) -> set[Path]:
        """The folders of ``targets`` and of every project they need, directly or transitively,
        by path or by version (unreadable ones included: they are reached by path)."""
        seen: set[Path] = set()
        stack = [t.path for t in targets]
        while stack:
            folder = stack.pop()
            if folder in seen:
                continue
            seen.add(folder)
            project = self.project_at(folder)
            if project is None:
                continue
            stack.extend(d.resolved for d in project.local_deps if d.resolved is not None)
            stack.extend(self.by_name[i.normalized].path for i in project.index_deps if i.normalized in self.by_name)
        return seen

    def errors_reaching(self, targets: Iterable[Project]) -> list[Problem]:
        """Every error in a project ``targets`` reach (see :meth:`reached_folders`) and every
        graph error among them (cycles, names two projects claim): the one gate that every verb
        that writes or uploads (rewrite and its --check, publish, release, verify) applies first."""
        folders = self.reached_folders(targets)
        names = {p.normalized for f in folders if (p := self.project_at(f)) is not None and p.normalized}
        out: list[Problem] = []
        for problem in self.problems:
            if problem.severity != "error":
                continue
            if (problem.code == "dependency-cycle" and set(problem.subjects) & names) or (problem.code == "duplicate-name" and set(problem.subjects) & names) or (problem.path is not None and self.owner_of(self.root / problem.path) in folders):
                out.append(problem)
        return out

    def direct(self, project: Project, runtime_only: bool = True) -> list[str]:
        """The shared packages ``project`` names directly, by path or by version. A path counts only
        when it leads to the project that owns that name (two projects claiming one name make no edge)."""
        out: dict[str, None] = {}
        for d in project.local_deps:
            target = self.by_name.get(d.normalized)
            if target is not None and d.resolved == target.path and (d.runtime or not runtime_only):
                out.setdefault(d.normalized, None)
        for i in project.index_deps:
            if i.normalized in self.by_name and (i.runtime or not runtime_only):
                out.setdefault(i.normalized, None)
        return list(out)

    def dependencies_of(self, name: str, runtime_only: bool = True) -> list[str]:
        key = (name, runtime_only)
        cached = self._deps_cache.get(key)
        if cached is not None:
            return cached
        p = self.by_name.get(name)
        out = [] if p is None else self.direct(p, runtime_only)
        self._deps_cache[key] = out
        return out

    def transitive(self, project: Project, runtime_only: bool = True) -> list[str]:
        """Every shared package ``project`` needs, direct and indirect (runtime edges beyond
        the first hop; the first hop honours ``runtime_only``)."""
        out: dict[str, None] = {}
        stack = self.direct(project, runtime_only)
        while stack:
            n = stack.pop()
            if n in out:
                continue
            out[n] = None
            stack.extend(d for d in self.dependencies_of(n, True) if d not in out)
        return sorted(out)

    def publish_order(self) -> list[str]:
        """Topological order of shared packages by runtime internal dependencies.

        Ties are broken by name so the order is stable. A cycle raises CycleError.
        """
        names = sorted(p.normalized for p in self.shared if p.normalized)
        known = set(names)
        deps = {n: sorted(d for d in self.dependencies_of(n, True) if d in known) for n in names}
        order: list[str] = []
        state: dict[str, int] = {}
        for start in names:
            if state.get(start):
                continue
            # iterative depth-first search (deep chains must not hit the recursion limit)
            state[start] = 1
            trail = [start]
            stack: list[Iterator[str]] = [iter(deps[start])]
            while stack:
                nxt = next(stack[-1], None)
                if nxt is None:
                    stack.pop()
                    done = trail.pop()
                    state[done] = 2
                    order.append(done)
                    continue
                s = state.get(nxt)
                if s == 2:
                    continue
                if s == 1:
                    raise CycleError([*trail[trail.index(nxt):], nxt])
                state[nxt] = 1
                trail.append(nxt)
                stack.append(iter(deps[nxt]))
        return order

    def cycles(self) -> list[list[str]]:
        """Every dependency cycle among shared packages (runtime edges), one per strongly
        connected component, each as a closed path ``[a, b, ..., a]``."""
        names = sorted(p.normalized for p in self.shared if p.normalized)
        known = set(names)
        deps = {n: sorted(d for d in self.dependencies_of(n, True) if d in known) for n in names}
        out: list[list[str]] = []
        for comp in strongly_connected(names, deps):
            if len(comp) == 1 and comp[0] not in deps[comp[0]]:
                continue
            members = set(comp)
            start = min(comp)
            out.append(cycle_through(start, deps, members))
        return sorted(out)

    def edges(self, runtime_only: bool = False) -> list[tuple[str, str, bool]]:
        """(from, to, runtime) for every internal dependency (by path or by version), services included."""
        result: dict[tuple[str, str], bool] = {}
        for p in self.projects:
            if not p.normalized or p.role == "other":
                continue
            runtime_names = set(self.direct(p, True))
            for target in self.direct(p, runtime_only):
                key = (p.normalized, target)
                result[key] = result.get(key, False) or target in runtime_names
        return [(a, b, r) for (a, b), r in sorted(result.items())]


class CycleError(Exception):
    def __init__(self, cycle: list[str]) -> None:
        self.cycle = cycle
        super().__init__(" -> ".join(cycle))
