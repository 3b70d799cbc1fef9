"""The runtime every copyloop service shares: server start/stop, auth, errors, metrics, config,
database plumbing. Written once here so the services stay small."""
