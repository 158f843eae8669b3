"""``nexusify publish``: plan (:mod:`.plan`), build (:mod:`.builds`), upload (:mod:`.files`),
verify (:mod:`.verify`), record (:mod:`.state`); :mod:`.execute` runs the steps in order.

The Python API: ``run_publish(settings, PublishOptions(...))`` returns a :class:`PublishReport`.
"""

from nexusify.publish.execute import execute_plan, run_publish
from nexusify.publish.plan import PublishOptions, PublishPlan, plan_publish
from nexusify.publish.report import PublishReport

__all__ = ["PublishOptions", "PublishPlan", "PublishReport", "execute_plan", "plan_publish", "run_publish"]
