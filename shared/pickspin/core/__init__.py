"""The pure core: settings, events, Eq. 2 scoring, Algorithm 1 and 2, routers' interfaces,
the telemetry window. No I/O: it imports nothing of pickspin outside itself."""
