"""The verbs of ``nexusify``: one summary and a few examples each, in one place.

``nexusify --help`` lists the summaries, ``nexusify VERB --help`` shows the verb's summary as
its description and its examples as the epilog, and ``python -m nexusify.docs`` writes the
same table into docs/commands.md. Nothing else describes a verb, so the three cannot disagree.
This module imports no verb: listing them costs nothing (the verb modules load their
dependencies only when the parser is built).
"""

from __future__ import annotations

from dataclasses import dataclass

from nexusify.demo.report import TUNABLE

# the settings that locate the index and log in to it: where uploads go and what is already there
UPLOAD = ("nexus_url", "repository", "repository_url", "index_url", "username", "timeout")
# ... and where installs resolve from (a group of hosted + proxy, `index-repository`)
INSTALL = ("nexus_url", "repository", "index_repository", "repository_url", "index_url", "username", "timeout")


@dataclass(frozen=True)
class Verb:
    name: str
    summary: str  # one line of at most 60 characters, no final period: `nexusify --help`, the README, the verb's description
    examples: tuple[tuple[str, str], ...]  # (command line, what it does); each one parses (a test runs them)
    # the index settings it reads, the ones its help lists (Settings attribute names). Every verb
    # still accepts them all (before or after the verb), as config-file keys and variables too.
    index_options: tuple[str, ...]

    def epilog(self) -> str:
        """The examples block of ``nexusify VERB --help``."""
        return "Examples:\n" + "\n".join(f"  {cmd}\n      {what}" for cmd, what in self.examples)


VERBS: tuple[Verb, ...] = (
    Verb("audit", "report shared packages, services, publish order and problems", (
        ("nexusify audit", "packages, services, publish order and every problem with file:line"),
        ("nexusify audit --graph mermaid", "the dependency graph as a Mermaid diagram"),
        ("nexusify audit --json --offline", "the report as JSON, without asking the index"),
    ), index_options=(*UPLOAD, "priority", "public_index_url")),
    Verb("publish", "build and upload the shared packages in dependency order", (
        ("nexusify publish --dry-run", "what would be built, skipped and uploaded, and why"),
        ("nexusify publish", "build and upload; a second run uploads nothing"),
        ("nexusify publish maestro-core-api", "one package and the shared packages it needs"),
    ), index_options=(*INSTALL, "constraint", "jobs")),
    Verb("rewrite", "make services depend on shared packages by version", (
        ("nexusify rewrite services/* --diff", "show what would change, write nothing"),
        ("nexusify rewrite services/*", "rewrite every service, all files or none"),
        ("nexusify rewrite --check", "in CI: exit 1 while anything would still change"),
    ), index_options=(*INSTALL, "source_name", "constraint", "priority")),
    Verb("affected", "list what a change touches: packages and consumers", (
        ("nexusify affected", "changed shared packages (against the index), dependents, consumers"),
        ("nexusify affected --since origin/main --json", "offline, from the git diff; as JSON"),
        ("nexusify affected --since HEAD~1 --format names", "the affected consumers, one per line"),
    ), index_options=UPLOAD),
    Verb("release", "bump changed packages and dependents, re-pin consumers", (
        ("nexusify release --dry-run", "the whole plan (versions, re-pins, changelogs); write nothing"),
        ("nexusify release --bump auto --publish", "bump from Conventional Commits, then publish them"),
        ("nexusify release maestro-core-config --bump minor --commit", "one package, commit and tag"),
    ), index_options=(*INSTALL, "source_name", "constraint", "jobs")),
    Verb("verify", "prove the migration: no path left, locks ok, index installs", (
        ("nexusify verify", "static, lock and resolve checks for every consumer"),
        ("nexusify verify services/gateway --build", "also build its Dockerfiles and import in the image"),
        ("nexusify verify --json", "the consumer x check table as JSON"),
    ), index_options=(*INSTALL, "source_name")),
    Verb("deploy", "deploy services: migrations, image build, blue-green switch", (
        ("nexusify deploy -e staging --dry-run", "the plan and the migration SQL; change nothing"),
        ("nexusify deploy -e staging", "every configured service, blue-green"),
        ("nexusify deploy down -e staging --yes", "remove what nexusify created there (`deploy unlock`: a stale lock)"),
    ), index_options=INSTALL),
    Verb("rollback", "switch back to a kept version, health-checked, no rebuild", (
        ("nexusify rollback -e staging", "every service back to its previous kept version"),
        ("nexusify rollback -e staging --to v1 quality-fabric", "one service back to version v1"),
    ), index_options=()),
    Verb("status", "show what runs where: live, kept, health per host", (
        ("nexusify status -e staging", "per host and service: live and kept versions, health"),
        ("nexusify status -e staging --json", "the same as JSON; exit 1 when hosts disagree or one is unhealthy"),
    ), index_options=()),
    Verb("history", "show the deployment history of an environment", (
        ("nexusify history -e staging", "the last 20 deploys and rollbacks, newest first"),
        ("nexusify history -e staging --service quality-fabric -n 5", "the last 5 that touched one service"),
        ("nexusify history -e staging --json", "every record as JSON"),
    ), index_options=()),
    Verb("init", "write a commented nexusify.toml for this monorepo", (
        ("nexusify init", "write nexusify.toml from what audit finds"),
        ("nexusify init --force", "overwrite an existing nexusify.toml"),
    ), index_options=("nexus_url", "repository", "index_repository", "repository_url", "index_url",
                      "source_name", "constraint", "priority")),
    Verb("demo", "run the whole journey on the sample monorepo, locally", (
        ("nexusify demo", "audit, publish, rewrite, clean install, build and deploy blue-green"),
        ("nexusify demo --no-engine", "without the image build and deploy"),
        ("nexusify demo --workdir /tmp/nx-demo --constraint exact", "another folder, exact pins"),
    ), index_options=TUNABLE),  # the demo runs its own index: it refuses the URL settings
    Verb("completion", "print a shell completion script (bash, zsh, fish)", (
        ("nexusify completion bash", "source it from ~/.bashrc, or save it in /etc/bash_completion.d/"),
        ("nexusify completion fish", "save it as ~/.config/fish/completions/nexusify.fish"),
    ), index_options=()),
)

BY_NAME: dict[str, Verb] = {v.name: v for v in VERBS}


def verbs_markdown() -> str:
    """The table of verbs of docs/commands.md (``<!-- BEGIN GENERATED: verbs -->``)."""
    rows = ["| command | what it does | for example |", "| --- | --- | --- |"]
    for v in VERBS:
        example = "<br>".join(f"`{cmd}`" for cmd, _ in v.examples)
        rows.append(f"| `{v.name}` | {v.summary} | {example} |")
    return "\n".join(rows) + "\n\n`nexusify COMMAND --help` lists the options of a command and explains its examples.\n"
