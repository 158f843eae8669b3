"""The monorepo's folders, listed once per command: discovery, the requirements consumers and the
Dockerfile scan each walk the tree with their own pruning, and while a workspace is loaded
(:func:`listed_once`) they share one listing of each folder instead of asking the file system
three times. Outside it, :func:`walk` is :func:`os.walk`."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterator
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")

Listing = tuple[tuple[str, ...], tuple[str, ...], frozenset[str]]
# folder -> (sub-folders, files, sub-folders that are symbolic links); None: no cache (outside a load)
_listings: dict[str, Listing | None] | None = None
_venvs: dict[str, bool] = {}


def listed_once(fn: Callable[P, R]) -> Callable[P, R]:
    """Run ``fn`` with every folder listed at most once (the outermost call owns the cache)."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        global _listings
        if _listings is not None:
            return fn(*args, **kwargs)
        _listings = {}
        try:
            return fn(*args, **kwargs)
        finally:
            _listings = None
            _venvs.clear()

    return wrapper


def _list(listings: dict[str, Listing | None], folder: str) -> Listing | None:
    """What os.walk reads of one folder: (sub-folders, other entries, sub-folders it does not
    enter because they are symbolic links); None: unreadable (os.walk skips it)."""
    if folder in listings:
        return listings[folder]
    dirs: list[str] = []
    files: list[str] = []
    links: set[str] = set()
    try:
        with os.scandir(folder) as it:
            for entry in it:
                try:
                    is_dir = entry.is_dir()
                except OSError:
                    is_dir = False
                if not is_dir:
                    files.append(entry.name)
                    continue
                dirs.append(entry.name)
                try:
                    if entry.is_symlink():
                        links.add(entry.name)
                except OSError:
                    links.add(entry.name)  # os.walk does not enter what it cannot tell
    except OSError:
        listings[folder] = None
        return None
    found = (tuple(dirs), tuple(files), frozenset(links))
    listings[folder] = found
    return found


def walk(top: str | os.PathLike[str]) -> Iterator[tuple[str, list[str], list[str]]]:
    """:func:`os.walk` (top-down, symbolic links to folders listed but not entered, unreadable
    folders skipped; the caller prunes by editing the folder list), from the shared listing
    while a workspace is loaded."""
    listings = _listings  # this walk keeps the cache it started with, whoever ends the load
    if listings is None:
        yield from os.walk(top)
        return
    stack = [os.fspath(top)]
    while stack:
        folder = stack.pop()
        found = _list(listings, folder)
        if found is None:
            continue
        dirs, files, links = found
        dirnames = list(dirs)
        yield folder, dirnames, list(files)
        stack.extend(os.path.join(folder, d) for d in reversed(dirnames) if d not in links)


def is_virtualenv(folder: str) -> bool:
    """Whether ``folder`` holds a virtualenv (its ``pyvenv.cfg``)."""
    if _listings is None:
        return os.path.isfile(os.path.join(folder, "pyvenv.cfg"))
    found = _venvs.get(folder)
    if found is None:
        found = _venvs[folder] = os.path.isfile(os.path.join(folder, "pyvenv.cfg"))
    return found


__all__ = ["is_virtualenv", "listed_once", "walk"]
