"""nexusify: publish a monorepo's shared packages to Nexus, rewrite services to use them, deploy."""

__version__ = "0.1.0"
