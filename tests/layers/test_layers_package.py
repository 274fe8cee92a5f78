"""The layers package: one concern per file, public TensorFlow APIs only."""

import ast
import pathlib

import keras_adrec.layers

PACKAGE = pathlib.Path(keras_adrec.layers.__file__).parent
MAX_LINES = 450


def _modules():
    return sorted(PACKAGE.rglob("*.py"))


def test_no_layers_module_is_over_the_line_limit():
    long = {
        str(path.relative_to(PACKAGE)): n
        for path in _modules()
        if (n := len(path.read_text().splitlines())) > MAX_LINES
    }
    assert not long, f"over {MAX_LINES} lines: {long}"


def test_no_private_tensorflow_imports():
    private = []
    for path in _modules():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            private += [
                f"{path.relative_to(PACKAGE)}: {name}"
                for name in names
                if name.startswith("tensorflow.python")
            ]
    assert not private, private
