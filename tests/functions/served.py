"""What `kn func build --builder=host` and the image do with a function folder, done here.

func's scaffold is a project named `service` that depends on `func-python` (unpinned) and
`function @ <folder>`, and a `main.py` that imports `new` from `function` and hands it to
the middleware's `serve` (`func_python.http` or `func_python.cloudevent`, by func.yaml's
`invoke`). So: `make stage` copies the library in, pip installs the folder as `function`
into a target directory, and the function runs from there as its own process, with the
envs func.yaml gives it (their values made local) and `LISTEN_ADDRESS`.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from pickspin.local.processes import Proc, free_port, spawn, stop, wait_http
from tests.conftest import REPO

FUNCTIONS = ("gateway", "classifier", "selector", "telemetry", "responder")


def func_yaml(name: str) -> dict[str, Any]:
    return dict(yaml.load((REPO / "functions" / name / "func.yaml").read_text(),
                          Loader=yaml.BaseLoader))


def main_py(invoke: str) -> str:
    """The scaffold's entry point, plus one line saying where the code was imported from."""
    return (f"from func_python.{invoke} import serve\n"
            "from function import new\n"
            "import function, pickspin\n"
            "print('serving', function.__file__, 'with', pickspin.__file__, flush=True)\n"
            "serve(new)\n")


@dataclass(frozen=True)
class Installed:
    """The staged copy of the repository and one pip target directory per function."""

    root: Path

    def folder(self, name: str) -> Path:
        return self.root / "repo" / "functions" / name

    def site(self, name: str) -> Path:
        return self.root / "site" / name

    def scaffold(self, name: str) -> Path:
        return self.root / "scaffold" / name


def stage_and_install(root: Path) -> Installed:
    tree = root / "repo"
    shutil.copytree(REPO / "functions", tree / "functions",
                    ignore=shutil.ignore_patterns("pickspin", "__pycache__", "*.egg-info",
                                                  "build"))
    shutil.copytree(REPO / "shared" / "pickspin", tree / "shared" / "pickspin",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "Makefile", tree / "Makefile")
    subprocess.run(["make", "-s", "stage"], cwd=tree, check=True, timeout=120,
                   capture_output=True)
    installed = Installed(root)
    for name in FUNCTIONS:
        folder = installed.folder(name)
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps",
                        "--no-build-isolation", "--target", str(installed.site(name)),
                        f"function @ {folder.as_uri()}"], check=True, timeout=300,
                       capture_output=True)
        scaffold = installed.scaffold(name)
        scaffold.mkdir(parents=True)
        (scaffold / "main.py").write_text(main_py(func_yaml(name)["invoke"]))
        (scaffold / "pyproject.toml").write_text(
            '[build-system]\nrequires = ["setuptools>=68"]\n'
            'build-backend = "setuptools.build_meta"\n\n'
            '[project]\nname = "service"\nversion = "0.0.0"\n'
            f'dependencies = ["func-python", "function @ {folder.as_uri()}"]\n\n'
            '[tool.setuptools]\npy-modules = ["main"]\n')
    return installed


def resolve_scaffold(installed: Installed, name: str) -> list[str]:
    """What pip would install for the scaffold, offline against this environment (so every
    dependency the folder lists must already be satisfied here): the names it would add."""
    report = installed.root / f"report-{name}.json"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--dry-run", "--no-index",
                    "--no-build-isolation", "--report", str(report),
                    str(installed.scaffold(name))], check=True, timeout=300,
                   capture_output=True)
    return sorted(item["metadata"]["name"] for item in json.loads(report.read_text())["install"])


def local_env(name: str, local: Mapping[str, str]) -> dict[str, str]:
    """func.yaml's `run.envs` for `name`, each value replaced by its local one."""
    wanted = [e["name"] for e in func_yaml(name)["run"]["envs"]]
    missing = [k for k in wanted if k not in local]
    assert not missing, f"{name}'s func.yaml sets {missing}: give them a local value"
    return {k: local[k] for k in wanted}


def serve(installed: Installed, name: str, env: Mapping[str, str], logs: Path,
          port: int | None = None, timeout: float = 60.0) -> Proc:
    """Start the installed function as its own process, as the image's `main.py` does."""
    port = port or free_port()
    proc = spawn(f"{name}-{port}", "function", [sys.executable, str(installed.scaffold(name) /
                                                                    "main.py")],
                 env={"PYTHONPATH": str(installed.site(name)), "PYTHONUNBUFFERED": "1",
                      "LISTEN_ADDRESS": f"127.0.0.1:{port}", **env},
                 cwd=installed.scaffold(name), log_dir=logs, port=port,
                 health="/health/readiness")
    if not wait_http(f"{proc.url}/health/readiness", timeout, alive=proc):
        log = Path(proc.log).read_text(errors="replace")[-3000:]
        stop(proc)
        raise RuntimeError(f"{name} did not become ready; its log ends with:\n{log}")
    return proc
