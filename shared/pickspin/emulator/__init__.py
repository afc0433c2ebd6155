"""Emulated model backends: one OpenAI-compatible process per service (model × vLLM, TGI or
TensorRT-LLM) with the real server's metric names and a latency profile from the values
file. In the spirit of llm-d's inference simulator; no model runs, the text is filler.

Run one with `python -m pickspin.emulator --service gemma-3-27b-vllm --port 8101`, or from
the tests with `tests.emulator.launch.start_emulator`.
"""

from pickspin.emulator.app import EmulatorApp
from pickspin.emulator.profile import EmulationProfile, LogNormal

__all__ = ["EmulationProfile", "EmulatorApp", "LogNormal"]
