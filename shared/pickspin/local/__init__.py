"""The embedded default: the whole system as local processes on one machine."""
