# PYTHON_ARGCOMPLETE_OK
"""The ``nexusify`` command line: parse argv, resolve settings, call one verb, map errors.

This is the one place where errors become messages and exit codes:
0 success, 1 the operation found problems or failed, 2 usage or configuration errors,
70 an internal error (a crash is never "problems found").
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Container, Mapping, Sequence
from types import ModuleType

from nexusify import __version__

TYPE_CHECKING = False  # `nexusify --version` imports no more than the above (not even typing)
if TYPE_CHECKING:
    from typing import Any, NoReturn

    from nexusify.errors import NexusifyError
    from nexusify.ui import help as help_page
    from nexusify.ui.output import Output

# `nexusify --help` imports the verbs' list and the help renderer besides; the verbs' modules and
# what they need (config, credentials, rich, the model...) are imported once a verb is chosen,
# and only that verb's module.
_VERSION_ONLY = frozenset({"--version", "--json", "--debug", "-v", "--verbose"})
_HELP_ONLY: tuple[list[str], ...] = (["--help"], ["-h"], [])


class _Parser(argparse.ArgumentParser):
    """argparse parses; the help page is rendered by :mod:`nexusify.ui.help` from the actions
    ``add_argument`` returned, recorded under the section they are listed in."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.recorded: dict[str, list[argparse.Action]] = {}
        self.section: str | None = None  # None: "Arguments" or "Options", by kind
        self.commands: list[help_page.Entry] = []  # the top level's verbs (the top level's parser)

    def add_argument(self, *args: Any, **kwargs: Any) -> argparse.Action:
        action = super().add_argument(*args, **kwargs)
        title = self.section or ("Options" if action.option_strings else "Arguments")
        self.recorded.setdefault(title, []).append(action)
        return action

    def error(self, message: str) -> NoReturn:
        from nexusify.errors import UsageError

        raise UsageError(message, hint=f"see `{self.prog} --help`")

    def format_usage(self) -> str:
        return f"Usage: {self.usage or self.prog}\n"

    def format_help(self) -> str:
        from nexusify.ui import help as help_page

        sections = [help_page.Section("Commands", self.commands)] + [
            help_page.from_actions(title, self.recorded.get(title, []))
            for title in ("Arguments", "Options", INDEX_OPTIONS, GLOBAL_OPTIONS)]
        return help_page.render(self.usage or self.prog, self.description, sections, self.epilog,
                                outdent=("Commands",))


def _command_module(verb: str) -> ModuleType:
    return importlib.import_module(f"nexusify.commands.{verb}")


INDEX_OPTIONS = "Index options (flag > environment > config file > default)"
GLOBAL_OPTIONS = "Global options"


def _add_common(parser: _Parser, *, top: bool = False, shown: Container[str] | None = None,
                index: bool = True) -> None:
    """The options every verb shares, accepted before or after the verb (defaults suppressed so
    both places work): the index settings in their own group, then the global options. Help
    lists the index settings a verb uses (``shown``: attribute names; None: all); the top level
    accepts them too but lists them only in each verb's help (``index=False``: leave them out,
    for the top level's help page alone, which lists none of them)."""
    s = argparse.SUPPRESS
    parser.section = INDEX_OPTIONS
    if index:
        from nexusify.config import SCHEMA

        for opt in SCHEMA:
            if not opt.flag:
                continue
            kwargs: dict[str, Any] = {"default": s, "dest": opt.attr,
                                      "help": s if top or (shown is not None and opt.attr not in shown)
                                      else opt.help + (f" [env {opt.env}]" if opt.env else "")}
            if opt.kind == "choice":
                kwargs["choices"] = opt.choices
                kwargs["metavar"] = "{" + ",".join(opt.choices) + "}"
            if opt.kind == "int":
                kwargs["type"] = int
                kwargs["metavar"] = "N"
            if opt.kind == "str":
                kwargs["metavar"] = "URL" if opt.flag.endswith("-url") else "NAME"
            parser.add_argument(opt.flag, **kwargs)
    parser.section = GLOBAL_OPTIONS
    g = parser
    g.add_argument("--root", metavar="DIR", default=s, help="monorepo root (default: the current directory)")
    g.add_argument("--json", action="store_true", default=s, help="print machine-readable JSON")
    g.add_argument("-v", "--verbose", action="count", default=s, help="more detail (repeatable)")
    g.add_argument("--debug", action="store_true", default=s, help="show tracebacks for errors")
    g.add_argument("-h", "--help", action="help", default=s, help="show this help and exit")
    if top:
        g.add_argument("--version", action="version", version=f"nexusify {__version__}",
                       help="show the version and exit")
    parser.section = None


def build_parser(verbs: Container[str] | None = None, *, index: bool = True) -> argparse.ArgumentParser:
    """The parser of ``nexusify``: every verb is a choice, but only the verbs in ``verbs`` (None:
    all) get their arguments, so only their modules are imported. ``index=False`` leaves the
    index options out: enough to render the top level's help, without importing the settings."""
    from nexusify.commands.verbs import VERBS
    from nexusify.ui import help as help_page

    parser = _Parser(
        prog="nexusify",
        usage="nexusify [OPTIONS] COMMAND [ARGS]...",
        description="Publish a monorepo's shared packages to Nexus, make services depend on them\n"
        "by version, and deploy the services blue-green.",
        add_help=False,
        epilog="Use `nexusify COMMAND --help` for a command's options and examples.\n"
        "Exit codes: 0 success (warnings too, unless --strict), 1 errors found or operation failed,\n"
        "2 usage or configuration error, 70 internal error (a bug: please report it).",
    )
    sub = parser.add_subparsers(title="Commands", dest="verb", metavar="COMMAND", parser_class=_Parser)
    for verb in VERBS:
        p = sub.add_parser(
            verb.name, prog=f"nexusify {verb.name}", help=verb.summary, epilog=verb.epilog(),
            description=verb.summary[:1].upper() + verb.summary[1:] + ".",
            add_help=False,
        )
        assert isinstance(p, _Parser)
        if verbs is None or verb.name in verbs:
            _command_module(verb.name).add_arguments(p)
            p.usage = _usage(p)
            _add_common(p, shown=verb.index_options)
        parser.commands.append(help_page.Entry(verb.name, verb.summary))
    _add_common(parser, top=True, index=index)
    return parser


def _chosen_verb(args_list: list[str]) -> str | None:
    """The verb ``args_list`` names, as the full parser reads it (an option's value that happens
    to be a verb's name is not one): the top level parsed alone, every verb left empty."""
    ns, _rest = build_parser(()).parse_known_args(args_list)
    verb = ns.verb
    return verb if isinstance(verb, str) else None


def _usage(parser: _Parser) -> str:
    """``nexusify VERB [OPTIONS] ARGS``: the verb's arguments, its options summed up (uv's way);
    required options are named, since the verb cannot run without them."""
    from nexusify.ui import help as help_page

    required = [f"{a.option_strings[-1]} {help_page.format_args(a, a.dest.upper())}"
                for a in parser.recorded.get("Options", []) if a.required]
    args = [help_page.format_args(a, a.dest) for a in parser.recorded.get("Arguments", [])]
    return " ".join([parser.prog, "[OPTIONS]", *required, *args])


def _settings_flags(ns: argparse.Namespace) -> dict[str, Any]:
    from nexusify.config import SCHEMA

    return {opt.attr: getattr(ns, opt.attr, None) for opt in SCHEMA if opt.flag}


def main(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    """Run nexusify; returns the exit code (tests call this directly)."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    completing = "_ARGCOMPLETE" in (os.environ if env is None else env)  # the shell asks for candidates
    if not completing and "--version" in args_list and _VERSION_ONLY.issuperset(args_list):
        print(f"nexusify {__version__}")
        return 0
    if not completing and args_list in _HELP_ONLY:  # the verbs' list, from commands/verbs.py alone
        parser = build_parser((), index=False)
        parser.print_help()
        if args_list:
            parser.exit()
        return 2
    import signal

    from nexusify.credentials import Redactor, secrets_in_env
    from nexusify.interrupts import interrupts_raise
    from nexusify.ui.logs import logging_for_run
    from nexusify.ui.output import Output

    env = dict(os.environ) if env is None else dict(env)
    json_mode = "--json" in args_list
    debug = "--debug" in args_list
    # one redactor for everything shown: the output layer and every log record of every logger
    redactor = Redactor(secrets_in_env(env))
    out = Output(json_mode=json_mode, env=env, redactor=redactor)
    # Ctrl-C, and SIGTERM (a CI job cancelled, `kill`) once, end every command through its cleanup:
    # containers, servers and half-done switches it started are undone before it exits 130
    with interrupts_raise(signal.SIGINT), interrupts_raise(signal.SIGTERM, once=True), logging_for_run(redactor):
        return _run(args_list, env, out, debug)


def _run(args_list: list[str], env: dict[str, str], out: Output, debug: bool) -> int:
    import traceback
    from pathlib import Path

    from nexusify.commands import Context
    from nexusify.commands.verbs import BY_NAME
    from nexusify.config import resolve_settings
    from nexusify.credentials import secrets_in_env
    from nexusify.errors import InternalError, NexusifyError, UsageError
    from nexusify.gitsteps import recover
    from nexusify.ui.logs import set_verbosity
    from nexusify.ui.output import Output

    redactor = out.redactor
    try:
        try:
            if "_ARGCOMPLETE" in env:  # completing: every verb's options
                parser = build_parser()
                import argcomplete

                argcomplete.autocomplete(parser)
            else:  # only the chosen verb's module is imported
                chosen = _chosen_verb(args_list)
                parser = build_parser(() if chosen is None else (chosen,))
            ns = parser.parse_args(args_list)
        except UsageError as exc:  # point at the help of the verb that was given, if any
            verb = next((a for a in args_list if a in BY_NAME), None)
            if verb is not None:
                exc.hint = f"see `nexusify {verb} --help`"
            raise
        if not ns.verb:
            parser.print_help()
            return 2
        verbose = getattr(ns, "verbose", 0) or 0
        out = Output(json_mode=getattr(ns, "json", False), verbose=verbose, env=env, redactor=redactor)
        set_verbosity(verbose)
        flags = _settings_flags(ns)
        # a password given in a URL flag (--nexus-url https://u:pw@host) is hidden from the start
        for secret in secrets_in_env({k: v for k, v in flags.items() if isinstance(v, str)}):
            redactor.add(secret)
        root = Path(getattr(ns, "root", None) or env.get("NEXUSIFY_ROOT") or os.getcwd())
        if not root.is_dir():
            raise UsageError(f"--root {root}: no such folder", hint="give the monorepo's top folder")
        # a write an earlier nexusify left unfinished (killed mid-rewrite) is completed or undone first
        for done in recover(root):
            out.err.print(f"nexusify: {done}", markup=False)
        settings = resolve_settings(root, flags, env)
        redactor.add(settings.url_password)
        ctx = Context(root=root.resolve(), settings=settings, env=env, out=out, strict=bool(getattr(ns, "strict", False)),
                      verb=ns.verb)
        return int(_command_module(ns.verb).run(ns, ctx))
    except NexusifyError as exc:
        if debug:
            out.err.print(traceback.format_exc(), markup=False)
        if out.json_mode:
            out.json(_error_envelope(args_list, exc))
        else:
            from rich.markup import escape

            out.err.print(f"[bold red]error:[/bold red] {escape(str(exc))}", markup=True, highlight=False)
        return exc.exit_code
    except KeyboardInterrupt as exc:
        out.err.print(f"interrupted: {exc}" if str(exc) else "interrupted", markup=False)
        return 130
    except Exception as exc:  # an unexpected failure: say so plainly, never a silent 0
        if debug:
            out.err.print(traceback.format_exc(), markup=False)
        if type(exc).__module__.startswith("docker."):  # the engine refused (docker.errors), not a nexusify bug
            out.err.print(f"error: the container engine failed: {out.redact(str(exc))}\n"
                          "  hint: check the engine (its logs, free disk, network setup) and re-run", markup=False)
            return 1
        error = InternalError(f"internal error: {type(exc).__name__}: {out.redact(str(exc))}",
                              hint="re-run with --debug for the traceback, and report it")
        if out.json_mode:
            out.json(_error_envelope(args_list, error))
        else:
            out.err.print(f"error: {error}", markup=False)
        return error.exit_code


def _error_envelope(args_list: list[str], exc: NexusifyError) -> dict[str, Any]:
    """A run that ended in an error, as every verb's JSON (:mod:`nexusify.ui.envelope`)."""
    from nexusify.commands.verbs import BY_NAME
    from nexusify.errors import ConfigErrors
    from nexusify.ui.envelope import envelope

    verb = next((a for a in args_list if a in BY_NAME), None)
    errors = exc.errors if isinstance(exc, ConfigErrors) else [exc]
    return envelope(verb, exc.to_dict(), exit_code=exc.exit_code, errors=errors, warnings=[])


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
