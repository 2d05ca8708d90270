"""explain_engine stays a pure PyTorch library: the import-linter contract holds and is not vacuous."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = str(Path(sys.executable).with_name("lint-imports"))


def lint_imports(cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(cwd)}
    return subprocess.run(
        [LINT_IMPORTS, "--no-cache"], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


def test_explain_engine_imports_neither_django_celery_drf_nor_the_app():
    result = lint_imports(REPO_ROOT)

    assert result.returncode == 0, result.stdout + result.stderr


def test_the_contract_catches_an_engine_module_that_imports_django(tmp_path):
    shutil.copy(REPO_ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    for package in ("explain_engine", "reviewapp"):
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text("")
    (tmp_path / "explain_engine" / "sweep.py").write_text("from django.db import models\n")

    result = lint_imports(tmp_path)

    assert result.returncode != 0
    assert "explain_engine is not allowed to import django" in result.stdout
    assert "explain_engine.sweep -> django" in result.stdout
