"""Deploy: secrets, migrations, images, traffic switch, history and the pipeline that runs them.

- :mod:`~nexusify.deploy.config`: the ``deploy`` table, validated (environments, services, proxy).
- :mod:`~nexusify.deploy.secrets`: AWS Secrets Manager or an env-file; values as ``Secret``.
- :mod:`~nexusify.deploy.migrations`: Alembic ``upgrade head`` under a PostgreSQL advisory lock.
- :mod:`~nexusify.deploy.engine`: the container engine (Docker SDK; Podman's API works too).
- :mod:`~nexusify.deploy.images`: version, build, tag, push.
- :mod:`~nexusify.deploy.switch`: the ``TrafficSwitch`` protocol and its nginx implementation.
- :mod:`~nexusify.deploy.bluegreen`: green beside blue, health check, switch, drain, keep, recover.
- :mod:`~nexusify.deploy.lock` and :mod:`~nexusify.deploy.history`: one deploy per environment
  at a time; an append-only record of every deploy and rollback.
- :mod:`~nexusify.deploy.pipeline`: the plan as data and its execution (``deploy``/``rollback``).
"""
