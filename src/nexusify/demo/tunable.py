"""The settings a user may try on the demo's sample (``nexusify demo --constraint exact``): a
module of its own so that listing the verbs (``nexusify --help``) imports nothing of the demo."""

TUNABLE = ("constraint", "priority", "source_name", "jobs")
