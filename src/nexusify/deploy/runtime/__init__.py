"""Where versions run: the engine connection (one transport per scheme: ssh through the system's ssh
and a kept master, tcp with TLS, unix), the SDK boundary with typed errors, containers, images and
how images reach each host. Docker's API and Podman's implement :class:`~nexusify.deploy.protocols.Runtime`.
"""
