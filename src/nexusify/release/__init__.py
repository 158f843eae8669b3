"""``nexusify release``: bump changed shared packages and every dependent, re-pin consumers,
write changelogs, optionally commit, tag and publish (see :mod:`nexusify.release.plan`)."""

from nexusify.release.plan import (
    Bump,
    ReleasePlan,
    Repin,
    apply_release,
    plan_release,
    publish_released,
)

__all__ = ["Bump", "ReleasePlan", "Repin", "apply_release", "plan_release", "publish_released"]
