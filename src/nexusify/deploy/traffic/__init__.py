"""Where traffic goes: nginx on the deploying host, or the proxy container on each host; both
implement :class:`~nexusify.deploy.protocols.TrafficSwitch`.
"""
