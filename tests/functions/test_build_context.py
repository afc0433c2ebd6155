"""Each function folder builds on its own once `make stage` has copied the library in:
its pyproject packages `function` and the staged `pickspin`, nothing from outside."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.conftest import REPO


@pytest.mark.parametrize("function", ["gateway", "classifier", "selector", "telemetry",
                                      "responder"])
def test_a_staged_function_builds_a_wheel_with_the_library_inside(tmp_path: Path,
                                                                  function: str) -> None:
    folder = tmp_path / function
    shutil.copytree(REPO / "functions" / function, folder,
                    ignore=shutil.ignore_patterns("pickspin", "__pycache__", "*.egg-info"))
    # what `make stage` does, into the copy
    shutil.copytree(REPO / "shared" / "pickspin", folder / "pickspin",
                    ignore=shutil.ignore_patterns("__pycache__"))
    out = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(out), str(folder)], check=True, timeout=300)
    (wheel,) = out.glob("*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "function/func.py" in names and "function/__init__.py" in names
    assert "pickspin/core/settings.py" in names and "pickspin/adapters/function.py" in names
    if function == "classifier":  # the classifier serves the committed ONNX model
        assert "pickspin/models/complexity-distilbert/model.onnx" in names


def test_make_stage_copies_the_library_into_every_function(tmp_path: Path) -> None:
    tree = tmp_path / "repo"
    shutil.copytree(REPO / "functions", tree / "functions",
                    ignore=shutil.ignore_patterns("pickspin", "__pycache__"))
    shutil.copytree(REPO / "shared" / "pickspin", tree / "shared" / "pickspin",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "Makefile", tree / "Makefile")
    subprocess.run(["make", "-s", "stage"], cwd=tree, check=True, timeout=60,
                   capture_output=True)
    for function in ("gateway", "classifier", "selector", "telemetry", "responder"):
        assert (tree / "functions" / function / "pickspin" / "apps" / "gateway" / "app.py").exists()


@pytest.mark.parametrize(("function", "middleware"), [
    ("gateway", "http"), ("classifier", "cloudevent"), ("selector", "cloudevent"),
    ("telemetry", "cloudevent"), ("responder", "cloudevent")])
def test_pickspin_up_serves_each_function_with_the_middleware_its_func_yaml_names(
        function: str, middleware: str) -> None:
    from pickspin.local.plan import serve_command
    from pickspin.local.serve import invoke_of

    folder = REPO / "functions" / function
    assert serve_command(folder)[1:] == ["-m", "pickspin.local.serve", str(folder)]
    assert invoke_of(folder) == middleware  # what pickspin.local.serve wraps `new` with
