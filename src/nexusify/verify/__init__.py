"""``nexusify verify``: the proof that a migration worked, per consumer of shared packages.

Four checks, each ok / FAIL (with its findings at file:line) / n/a:

1. **static** (:mod:`.static`): no path, ``file:`` URL or workspace reference to a shared package
   left in the consumer's manifest, requirements files, lockfiles or the Dockerfiles that build it;
2. **lock** (:mod:`.lock`): its own tool accepts its lockfile;
3. **resolve** (:mod:`.resolve`): pip resolves what it installs from the configured index alone,
   every shared package coming from there;
4. **build** (:mod:`.build`, with ``--build``): each Dockerfile builds with its real context and the
   image imports the shared packages.

``rewrite --check`` stays the fast static gate; verify runs the consumers' real tools.
"""

from nexusify.verify.report import Check, ConsumerResult, Finding, VerifyReport
from nexusify.verify.run import run_verify, select_consumers

__all__ = ["Check", "ConsumerResult", "Finding", "VerifyReport", "run_verify", "select_consumers"]
