"""The loaded monorepo: its projects, problems, their roles (shared, consumer), the Dockerfiles and
lockfiles of each consumer, and the dependency graph's questions (closure, dependents, publish
order, cycles, edges), answered in one place for every verb."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from packaging.utils import canonicalize_name

from nexusify.errors import Problem
from nexusify.model.graph import cycle_through, strongly_connected
from nexusify.model.project import DockerBuild, Project

_NO_EXTRAS: frozenset[str] = frozenset()


class _Cycle(Exception):
    """A dependency cycle met by the cached closure walk (it then takes closure's own walk)."""


@dataclass
class Workspace:
    root: Path
    projects: list[Project]
    problems: list[Problem]
    by_name: dict[str, Project]
    broken: set[Path] = field(default_factory=set)  # folders whose pyproject.toml could not be read
    duplicates: set[str] = field(default_factory=set)  # normalised names two projects claim
    unmatched_builds: list[DockerBuild] = field(default_factory=list)  # Dockerfiles that build no project
    stay: frozenset[Path] = frozenset()  # folders the `stay-in-workspace` setting keeps in their uv workspace
    _by_path: dict[Path, Project] = field(default_factory=dict, repr=False)
    _deps_cache: dict[tuple[str, bool], list[str]] = field(default_factory=dict, repr=False)
    _pulls_cache: dict[str, frozenset[str]] = field(default_factory=dict, repr=False)

    shared_paths: frozenset[Path] = frozenset()  # decided by model.roles, by use
    unnamed_shared: frozenset[Path] = frozenset()  # folders meant to be shared packages that have no name
    consumer_why: dict[Path, str] = field(default_factory=dict)  # consumer folder -> why it is one
    consumer_takes: dict[Path, tuple[str, ...]] = field(default_factory=dict)  # -> the shared packages it installs directly
    aggregated_only: frozenset[Path] = frozenset()  # shared applications only undeployed aggregators take (model.roles)

    # ------------------------------------------------------------------ roles (model.roles decides)

    def shared(self) -> list[Project]:
        """The shared packages: projects another project of the monorepo depends on (and libraries
        in a shared folder nothing uses yet), in any folder (:mod:`nexusify.model.roles`)."""
        return [p for p in self.projects if p.path in self.shared_paths]

    def consumers(self) -> list[Project]:
        """Every project that installs shared code, wherever it lives, the root included; a shared
        package deployed itself is one too (:mod:`nexusify.model.roles`). Sorted by folder."""
        return [p for p in self.projects if p.path in self.consumer_why]

    def is_shared(self, project: Project | str | None) -> bool:
        """Whether a project (or a normalised name) is a shared package of this monorepo."""
        if isinstance(project, str):
            project = self.by_name.get(project)
        return project is not None and project.path in self.shared_paths

    def is_consumer(self, project: Project) -> bool:
        return project.path in self.consumer_why

    def why_consumer(self, project: Project) -> str | None:
        return self.consumer_why.get(project.path)

    def takes(self, consumer: Project) -> list[str]:
        """The shared packages ``consumer`` installs directly (what made it a consumer; the
        closure of these is everything it installs)."""
        return list(self.consumer_takes.get(consumer.path, ()))

    def dockerfiles_of(self, consumer: Project) -> list[DockerBuild]:
        """The Dockerfiles that build ``consumer``, each with the build context it is built from
        (compose, file names, what it copies and installs: :mod:`nexusify.model.dockerfiles`)."""
        return list(consumer.docker_builds)

    def lockfiles_of(self, consumer: Project) -> list[Path]:
        """The lockfiles that pin ``consumer``: its own, or its uv workspace root's ``uv.lock``."""
        return list(consumer.lockfiles)

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
        return [p for p in self.problems if p.severity == "error" and p.path is not None
                and self.owner_of(self.root / p.path) in self.unnamed_shared]

    def errors_reaching(self, targets: Iterable[Project]) -> list[Problem]:
        """Every error in a project ``targets`` reach (see :meth:`closure`; an unreadable project
        they name by path included) and every
        graph error among them (cycles, names two projects claim): the one gate that every verb
        that writes or uploads (rewrite and its --check, publish, release, verify) applies first."""
        targets = list(targets)
        reached = [*targets, *(self.by_name[n] for n in self.closure(targets, runtime=False))]
        folders = {p.path for p in reached}
        # a path to a project that has no name (or cannot be read) leads nowhere the closure goes
        folders |= {d.resolved for p in reached for d in p.local_deps if d.resolved is not None}
        names = {p.normalized for p in reached if p.normalized}
        rels = {p.rel(self.root) for p in targets}  # whose image takes code that is no package
        out: list[Problem] = []
        for problem in self.problems:
            if problem.severity != "error":
                continue
            if (problem.code == "dependency-cycle" and set(problem.subjects) & names) or (problem.code == "duplicate-name" and set(problem.subjects) & names) or (problem.path is not None and self.owner_of(self.root / problem.path) in folders) or (problem.code == "shared-code-unpackaged" and set(problem.subjects) & rels):
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

    def closure(self, starts: Iterable[Project | str], *, runtime: bool = True,
                extras: Mapping[str, Iterable[str]] | None = None) -> dict[str, str]:
        """Every project of the monorepo that installing ``starts`` (projects, or normalised names)
        installs, directly or transitively, by path or by version: {name: the start it comes
        through}, in the order reached. The starts themselves are in it only when reached again.

        ``runtime`` False takes every group of the starts themselves (what their tool installs for
        them, dev groups included); beyond the first hop only run-time edges count (installing a
        package never installs its dev groups). ``extras`` (start name -> the extras asked for it)
        makes an optional dependency count only when its extra is asked, at every hop (a
        dependency's extras are the ones its requirement asks); without it every extra counts."""
        precise = extras is not None
        asked: dict[str, frozenset[str]] = {canonicalize_name(k): frozenset(canonicalize_name(x) for x in v)
                                            for k, v in (extras or {}).items()}
        via: dict[str, str] = {}
        seen: set[tuple[str, frozenset[str]]] = set()
        stack: list[tuple[Project, frozenset[str], str, bool]] = []
        for start in starts:
            project = self.by_name.get(start) if isinstance(start, str) else start
            if project is None:
                continue
            name = project.normalized or project.rel(self.root)
            stack.append((project, asked.get(name, frozenset()), name, True))
        while stack:
            project, wanted, origin, first = stack.pop()
            key = (project.normalized or str(project.path), wanted)
            if key in seen and not first:
                continue
            seen.add(key)
            for name, dep_extras in self._edges(project, runtime or not first, wanted if precise else None):
                via.setdefault(name, origin)
                stack.append((self.by_name[name], dep_extras if precise else frozenset(), origin, False))
        return via

    def reached(self, start: Project | str, *, runtime: bool = True) -> frozenset[str]:
        """The names ``closure([start], runtime=runtime)`` reaches (its keys, extras not asked), from
        each package's run-time closure computed once per workspace and looked up."""
        project = self.by_name.get(start) if isinstance(start, str) else start
        if project is None:
            return frozenset()
        if project.normalized and self.by_name.get(project.normalized) not in (None, project):
            return frozenset(self.closure([project], runtime=runtime))  # a duplicate name: closure's own walk
        out: set[str] = set()
        for name, _extras in self._edges(project, runtime, None):
            out.add(name)
            out |= self._pulls(name)
        return frozenset(out)

    def _pulls(self, name: str) -> frozenset[str]:
        """``closure([name])``'s names, cached: a package's closure is the same for every consumer."""
        got = self._pulls_cache.get(name)
        if got is None:
            try:
                got = self._pulls_dag(name, set())
            except (_Cycle, RecursionError):  # closure's own walk: it stops where it has been
                got = self._pulls_cache[name] = frozenset(self.closure([name]))
        return got

    def _pulls_dag(self, name: str, active: set[str]) -> frozenset[str]:
        """Run-time closure of ``name`` as the union of its dependencies' (each cached once found);
        raises _Cycle when the walk meets a package it is inside of (no union is exact there)."""
        got = self._pulls_cache.get(name)
        if got is not None:
            return got
        project = self.by_name.get(name)
        if project is None:
            return frozenset()
        active.add(name)
        out: set[str] = set()
        for dep, _extras in self._edges(project, True, None):
            if dep in active:
                raise _Cycle(dep)
            out.add(dep)
            out |= self._pulls_dag(dep, active)
        active.discard(name)
        got = self._pulls_cache[name] = frozenset(out)
        return got

    def _edges(self, project: Project, runtime_only: bool,
               extras: frozenset[str] | None) -> Iterator[tuple[str, frozenset[str]]]:
        """(name, extras it asks) for each dependency of ``project`` on another project of the
        monorepo (a path counts only when it leads to the project owning that name); ``extras``
        None: every extra counts, else only those (and no Poetry optional dependency outside them)."""
        for d in project.local_deps:
            target = self.by_name.get(d.normalized)
            if target is None or d.resolved != target.path or (runtime_only and not d.runtime):
                continue
            if extras is not None and not _extra_taken(d.group, d.optional, extras):
                continue
            yield d.normalized, frozenset(canonicalize_name(x) for x in d.extras) if d.extras else _NO_EXTRAS
        for i in project.index_deps:
            if i.normalized not in self.by_name or (runtime_only and not i.runtime):
                continue
            if extras is not None and not _extra_taken(i.group, False, extras):
                continue
            yield i.normalized, _NO_EXTRAS

    def dependents(self, names: Iterable[str]) -> dict[str, list[str]]:
        """Every shared package that depends (run time, transitively) on one of ``names``, with the
        chain that leads to it: {dependent: [its dependency, ..., the named package]}. Breadth
        first, so each chain is a shortest one; ``names`` themselves map to []."""
        reverse: dict[str, list[str]] = {}
        for p in self.shared():
            if p.normalized:
                for d in self.dependencies_of(p.normalized, True):
                    reverse.setdefault(d, []).append(p.normalized)
        chains: dict[str, list[str]] = {n: [] for n in names}
        frontier = list(chains)
        while frontier:
            nxt: list[str] = []
            for n in sorted(frontier):
                for user in sorted(reverse.get(n, [])):
                    if user not in chains and self.is_shared(user):
                        chains[user] = [n, *chains[n]]
                        nxt.append(user)
            frontier = nxt
        return chains

    def publish_order(self) -> list[str]:
        """Topological order of shared packages by runtime internal dependencies.

        Ties are broken by name so the order is stable. A cycle raises CycleError.
        """
        names = sorted(p.normalized for p in self.shared() if p.normalized)
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
        names = sorted(p.normalized for p in self.shared() if p.normalized)
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
            if not p.normalized or not (self.is_shared(p) or self.is_consumer(p)):
                continue
            runtime_names = set(self.direct(p, True))
            for target in self.direct(p, runtime_only):
                key = (p.normalized, target)
                result[key] = result.get(key, False) or target in runtime_names
        return [(a, b, r) for (a, b), r in sorted(result.items())]


def _extra_taken(group: str, optional: bool, extras: frozenset[str]) -> bool:
    if group.startswith("extra:"):
        return bool(set(canonicalize_name(x) for x in group[len("extra:"):].split(",")) & extras)
    return not optional


class CycleError(Exception):
    def __init__(self, cycle: list[str]) -> None:
        self.cycle = cycle
        super().__init__(" -> ".join(cycle))
