"""explain_engine stays a pure PyTorch library: the import-linter contract holds and is not vacuous."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
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
    # The forbidden contracts only: the layers contracts would ask for modules this skeleton lacks.
    (tmp_path / "pyproject.toml").write_text(project_contracts(lambda name: "forbidden" in name))
    for package in ("explain_engine", "reviewapp"):
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text("")
    (tmp_path / "explain_engine" / "sweep.py").write_text("from django.db import models\n")

    result = lint_imports(tmp_path)

    assert result.returncode != 0
    assert "explain_engine is not allowed to import django" in result.stdout
    assert "explain_engine.sweep -> django" in result.stdout


def project_contracts(keep) -> str:
    """The project's import-linter settings with the contracts for which ``keep(name and type)`` is true."""
    text = (REPO_ROOT / "pyproject.toml").read_text()
    head = text[text.index("[tool.importlinter]") :]
    settings, *contracts = head.split("[[tool.importlinter.contracts]]")
    settings = settings.split("\n[", 1)[0]
    blocks = [block.split("\n[tool.", 1)[0] for block in contracts]
    kept = [block for block in blocks if keep("\n".join(block.strip().split("\n")[:2]))]
    return settings + "".join("\n[[tool.importlinter.contracts]]" + block for block in kept)


def app_contracts() -> str:
    """The project's import-linter settings with only the contracts about the app (their names say reviewapp)."""
    return project_contracts(lambda name: "reviewapp" in name.split("\n")[0])


def app_skeleton(root: Path) -> None:
    """Empty packages for every module the app's contracts name, checked against those contracts only."""
    (root / "pyproject.toml").write_text(app_contracts())
    for package in ("explain_engine", "reviewapp"):
        (root / package).mkdir()
        (root / package / "__init__.py").write_text("")
    for layer in (
        "api",
        "views",
        "tasks",
        "management",
        "forms",
        "services",
        "explore",
        "selectors",
        "bridge",
    ):
        (root / "reviewapp" / layer).mkdir()
        (root / "reviewapp" / layer / "__init__.py").write_text("")
    (root / "explain_engine" / "sweep.py").write_text("")


def test_the_skeleton_keeps_every_contract(tmp_path):
    app_skeleton(tmp_path)

    result = lint_imports(tmp_path)

    assert result.returncode == 0, result.stdout + result.stderr


def test_only_the_bridge_may_import_the_engine(tmp_path):
    app_skeleton(tmp_path)
    (tmp_path / "reviewapp" / "bridge" / "sweeps.py").write_text("import explain_engine.sweep\n")
    (tmp_path / "reviewapp" / "services" / "sweeps.py").write_text("import explain_engine.sweep\n")

    result = lint_imports(tmp_path)

    assert result.returncode != 0
    assert "reviewapp.services.sweeps -> explain_engine.sweep" in result.stdout
    assert "reviewapp.bridge.sweeps -> explain_engine.sweep" not in result.stdout


def test_services_may_not_import_tasks(tmp_path):
    app_skeleton(tmp_path)
    (tmp_path / "reviewapp" / "tasks" / "sweeps.py").write_text("import reviewapp.services.sweeps\n")
    (tmp_path / "reviewapp" / "services" / "sweeps.py").write_text(
        "def launch():\n    from reviewapp.tasks import sweeps\n"
    )

    result = lint_imports(tmp_path)

    assert result.returncode != 0
    assert "reviewapp.services.sweeps -> reviewapp.tasks.sweeps" in result.stdout


def test_an_import_circle_inside_the_app_is_caught(tmp_path):
    app_skeleton(tmp_path)
    (tmp_path / "reviewapp" / "services" / "sweeps.py").write_text(
        "from reviewapp.services import dimensions\n"
    )
    (tmp_path / "reviewapp" / "services" / "dimensions.py").write_text(
        "def render():\n    from reviewapp.services import sweeps\n"
    )

    result = lint_imports(tmp_path)

    assert result.returncode != 0
    assert "No cycles are allowed in reviewapp.services" in result.stdout
