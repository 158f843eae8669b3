"""Deploy: secrets, migrations, images, traffic switch, history and the pipeline that runs them.

Needs the ``deploy`` extra (docker, boto3, alembic, sqlalchemy), imported through
:func:`nexusify.extras.require` where used, so the base install never imports them.

- :mod:`~nexusify.deploy.config`: the ``deploy`` table, validated; its types in ``config_types``,
  section readers in ``config_sections``, the file:line checker in ``config_checker``.
- :mod:`~nexusify.deploy.readiness`: a service still using shared code from source is refused.
- :mod:`~nexusify.deploy.secrets`: AWS Secrets Manager or an env-file; values as ``Secret``.
- :mod:`~nexusify.deploy.migrations`: Alembic ``upgrade head`` under a PostgreSQL advisory lock.
- :mod:`~nexusify.deploy.engine`: the container engine (Docker SDK; Podman's API works too).
- :mod:`~nexusify.deploy.images`: version, build, tag, push.
- :mod:`~nexusify.deploy.switch`: the ``TrafficSwitch`` protocol and its nginx implementation.
- :mod:`~nexusify.deploy.state`: which container serves each service, and the transition in flight.
- :mod:`~nexusify.deploy.health` and :mod:`~nexusify.deploy.containers`: health probes; a service's
  labelled containers on one engine.
- :mod:`~nexusify.deploy.bluegreen`: green beside blue, health check, switch, drain, keep, recover.
- :mod:`~nexusify.deploy.allornone`: several services of one deploy switched all or none.
- :mod:`~nexusify.deploy.hosts`: an environment's hosts (``ssh://``, ``tcp://`` with TLS, ``unix://``)
  and the connection to each engine (one multiplexed SSH connection per host); the TLS settings of
  ``tcp://`` hosts, and what a failed TLS connection means, in :mod:`~nexusify.deploy.hosttls`.
- :mod:`~nexusify.deploy.sites`: one site per engine (the single engine with the local nginx, or
  each host with its :mod:`~nexusify.deploy.proxy_container`); :mod:`~nexusify.deploy.ship` gets
  images to every host; :mod:`~nexusify.deploy.migrate_remote` runs migrations on the first host.
- :mod:`~nexusify.deploy.lock` and :mod:`~nexusify.deploy.history`: one deploy per environment
  at a time; an append-only record of every deploy and rollback.
- :mod:`~nexusify.deploy.plan`, :mod:`~nexusify.deploy.result` and :mod:`~nexusify.deploy.pipeline`:
  the plan as data, the result (and ``DeployFailed``), and their execution (``deploy``/``rollback``).
"""
