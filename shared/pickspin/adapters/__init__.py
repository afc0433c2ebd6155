"""Adapters: how the core meets the outside (CloudEvents over HTTP, func-python, Prometheus,
Kubernetes, backend probes and engine metrics). Imports the core only."""
