"""Semantic serving: the ONNX encoder, the success heads and the routers built on them.
Imports the core only; training lives in `pickspin.training`."""
