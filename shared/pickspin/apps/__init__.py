"""The function apps: the gateway's HTTP app and the broker path's responder, on the core
and the adapters."""
