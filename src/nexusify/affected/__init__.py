"""``nexusify affected``: what a change touches (changed shared packages, their dependents, the
consumers that use any of them, with the reason chain)."""

from nexusify.affected.compute import Affected, Changed, Reached, affected, expand

__all__ = ["Affected", "Changed", "Reached", "affected", "expand"]
