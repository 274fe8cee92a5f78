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
    jobs -> cli), only the tuning code imports keras-tuner, no import
    circle among siblings in keras_adrec or benchmarks, and private
    modules stay inside their package."""
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


def _is_private(part):
    return part.startswith("_") and not part.startswith("__")


def _package_of(module, is_package):
    """The first-level package a module belongs to: `keras_adrec.data`
    for `keras_adrec.data.criteo`, `keras_adrec` for `keras_adrec.version`,
    `benchmarks` for `benchmarks.report`."""
    parts = module.split(".")
    if not is_package:
        parts = parts[:-1]
    return ".".join(parts[:2])


def _private_imports(path):
    """`(imported module, name)` of each import naming a private module or
    symbol, with the package that owns the first private part."""
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for alias in node.names:
                parts = node.module.split(".") + [alias.name]
                yield node.module, alias.name, parts
        elif isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, None, alias.name.split(".")


@pytest.mark.parametrize("folder", ["keras_adrec", "benchmarks"])
def test_no_private_names_imported_from_another_package(folder):
    """A leading-underscore module or symbol is used only inside the
    package that defines it (`keras_adrec.data._files` by
    `keras_adrec.data.*`), never from another package or library."""
    offenders = []
    for path in sorted((ROOT / folder).rglob("*.py")):
        relative = path.relative_to(ROOT).with_suffix("")
        is_package = relative.name == "__init__"
        parts = relative.parts[:-1] if is_package else relative.parts
        importer = _package_of(".".join(parts), is_package)
        for module, name, names in _private_imports(path):
            private = [i for i, part in enumerate(names) if _is_private(part)]
            if not private:
                continue
            owner = ".".join(names[: private[0]])
            if _package_of(owner, is_package=True) != importer:
                offenders.append(
                    f"{path.relative_to(ROOT)}: {module} {name or ''}"
                )
    assert not offenders, "\n".join(offenders)


@pytest.mark.parametrize("folder", ["keras_adrec", "benchmarks"])
def test_public_tensorflow_apis_only(folder):
    """No `tensorflow.python.*` import (TensorFlow's private modules) in
    the package or the benchmarks, not even inside a function."""
    offenders = []
    for path in sorted((ROOT / folder).rglob("*.py")):
        for module, _, _ in _private_imports(path):
            if module.split(".")[:2] == ["tensorflow", "python"]:
                offenders.append(f"{path.relative_to(ROOT)}: {module}")
    assert not offenders, "\n".join(offenders)


def test_one_concern_per_file_no_module_over_450_lines():
    """A module that grows past 450 lines holds more than one concern:
    split it (issue 26)."""
    long = [
        f"{path.relative_to(ROOT)}: {count} lines"
        for path in sorted((ROOT / "keras_adrec").rglob("*.py"))
        if (count := len(path.read_text().splitlines())) > 450
    ]
    assert not long, "\n".join(long)
