"""The CLI's command groups, one module each; `copyloop_client.cli` assembles them."""
