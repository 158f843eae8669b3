"""One reader per tool: each adds the :class:`~nexusify.model.project.LocalDependency` entries it
finds in a project's files (Poetry tables, PEP 621/735 arrays with uv/PDM/hatch forms, uv
workspaces, pip requirements files)."""

