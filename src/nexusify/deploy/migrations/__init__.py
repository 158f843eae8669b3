"""Alembic migrations, once per deploy, before traffic moves: in this process (``local``) or in a
one-off container of the new image on the primary host (``container``); both implement
:class:`~nexusify.deploy.protocols.MigrationRunner`.
"""
