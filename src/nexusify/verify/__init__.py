"""``nexusify verify``: the proof that a migration worked, per consumer of shared packages.

Four checks, each ok / FAIL (with its findings at file:line) / n/a:

1. **static** (:mod:`.static`): no path, ``file:`` URL or workspace reference to a shared package
   left in the consumer's manifest, requirements files, lockfiles or the Dockerfiles that build it;
   and (:mod:`.sources`) the index each tool takes each shared package from is the configured one;
2. **lock** (:mod:`.lock`): its own tool accepts its lockfile, and (:mod:`.lock_index`) the files
   and hashes it pins for shared packages are what the index serves;
3. **resolve** (:mod:`.resolve`): pip resolves what it installs from the configured index alone,
   every shared package coming from there;
4. **build** (:mod:`.build`, with ``--build``): each Dockerfile builds with its real context and the
   image imports the shared packages.

Dockerfiles no consumer owns whose context holds shared code are judged too (:mod:`.dockerfiles`);
``rewrite --check`` stays the fast static gate and shares those checks (:mod:`.gate`); verify runs
the consumers' real tools.
"""

from nexusify.verify.report import Check, ConsumerResult, Finding, VerifyReport
from nexusify.verify.run import run_verify, select_consumers

__all__ = ["Check", "ConsumerResult", "Finding", "VerifyReport", "run_verify", "select_consumers"]
