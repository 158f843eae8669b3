"""Deploy: secrets, migrations, images, traffic switch, history and the pipeline that runs them.

Needs the ``deploy`` extra (docker, boto3, alembic, sqlalchemy), imported through
:func:`nexusify.extras.require` where used, so the base install never imports them.

By concern, each a package (the pipeline on top of them):

- :mod:`~nexusify.deploy.config`: the ``deploy`` table (``load``), its types, section readers and
  the file:line checker.
- :mod:`~nexusify.deploy.protocols`: the seam. ``Runtime``, ``StateBackend``, ``TrafficSwitch``,
  ``ImageTransport``, ``MigrationRunner``: what blue-green needs from a backend.
- :mod:`~nexusify.deploy.runtime`: the docker/podman implementation. The engine connection (one
  transport per scheme: ``ssh://`` through the system's ssh and a kept master, ``tcp://`` with
  TLS, ``unix://``), the SDK boundary with typed errors (``sdk``), containers, images, health, how
  images reach each host (``transport``), the marker objects nexusify keeps on hosts.
- :mod:`~nexusify.deploy.traffic`: nginx on the deploying host (``switch``) or the proxy container
  on each host (``proxy_container``).
- :mod:`~nexusify.deploy.state`: live/in-flight versions (``store``), the lock (working copy and
  hosts), the history (working copy and hosts), ``status`` read from the hosts.
- :mod:`~nexusify.deploy.migrations`: one runner (``core``) run here (``local``) or in a one-off
  container of the new image on the primary host (``container``).
- Pipeline: :mod:`~nexusify.deploy.readiness` (a service still using shared code from source is
  refused), :mod:`~nexusify.deploy.secrets`, :mod:`~nexusify.deploy.bluegreen` (green beside blue,
  health, switch, drain, keep, recover: on the Protocols only), :mod:`~nexusify.deploy.sites` (one
  site per engine), :mod:`~nexusify.deploy.allornone` (several services and hosts switched all or
  none), :mod:`~nexusify.deploy.plan`, :mod:`~nexusify.deploy.result`, :mod:`~nexusify.deploy.pipeline`
  (``deploy``/``rollback``) and :mod:`~nexusify.deploy.teardown` (``deploy down``).
"""
