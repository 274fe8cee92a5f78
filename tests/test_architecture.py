"""The package's architecture, checked: dependency direction, no import
circle, and tests and benchmarks that use only public names."""

import ast
import pathlib
import shutil
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent


def test_import_linter_contracts_are_kept():
    """`.importlinter`: packages depend only on the packages below them
    (utils -> layers -> models -> data -> training -> export | tuning ->
    jobs -> cli), and only the tuning code imports keras-tuner."""
    lint = shutil.which("lint-imports")
    if lint is None:
        pytest.fail("import-linter is not installed (the [test] extra)")
    result = subprocess.run(
        [lint, "--config", str(ROOT / ".importlinter")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr
    assert "0 broken" in result.stdout


def _imported_names(path):
    """`(module, name)` of every `from keras_adrec... import name` and
    every `keras_adrec...` module imported, in one file."""
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module.split(".")[0] == "keras_adrec":
                yield node.module, None
                for alias in node.names:
                    yield node.module, alias.name
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "keras_adrec":
                    yield alias.name, None


@pytest.mark.parametrize("folder", ["tests", "benchmarks"])
def test_no_private_keras_adrec_names_outside_the_package(folder):
    offenders = []
    for path in sorted((ROOT / folder).rglob("*.py")):
        for module, name in _imported_names(path):
            parts = module.split(".") + ([name] if name else [])
            if any(p.startswith("_") and p != "__init__" for p in parts):
                offenders.append(
                    f"{path.relative_to(ROOT)}: {module} {name or ''}"
                )
    assert not offenders, "\n".join(offenders)
