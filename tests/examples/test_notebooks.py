"""Run every example notebook top to bottom, with the sizes meant for CI.

Each notebook runs in a fresh kernel of this interpreter, with
`ADREC_NOTEBOOK_SMALL=1` (the notebooks read it to pick small sizes), the
repository on `PYTHONPATH` and a temporary directory as working directory,
so whatever a notebook writes lands there. A cell that raises fails the
test. The real data samples are optional: `ADREC_DATA_DIR` points the
notebooks at them (`tests.samples.shared_data_dir`; a notebook's own
default is relative to `examples/`, not to the temporary directory), and
without them the notebooks fall back to synthetic data.
"""

import os
import pathlib

import pytest

from tests import samples

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
ipykernel_kernelspec = pytest.importorskip("ipykernel.kernelspec")

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]
EXAMPLES = REPO_ROOT / "examples"
NOTEBOOKS = (
    "quickstart",
    "criteo_ranking",
    "taobao_sequential",
    "attention_masks",
    "tuning",
    "serving",
)
# Notebooks whose figures must render, and how many PNG outputs at least.
FIGURES = {"criteo_ranking": 2, "attention_masks": 2}
# A line each notebook prints once its main result is there.
RESULT_LINES = {
    "quickstart": "AdRecInteraction, validation",
    "criteo_ranking": "kept fraction of the mean masked map",
    "taobao_sequential": "RM4 validation AUC",
    "attention_masks": "mask rule reproduced",
    "tuning": "best model, validation AUC",
    "serving": "row 3: served",
}
KERNEL_NAME = "keras-adrec-examples"
CELL_TIMEOUT_S = 600


@pytest.fixture(scope="module")
def jupyter_dir(tmp_path_factory):
    """A Jupyter data dir with a kernel spec that runs this interpreter."""
    root = tmp_path_factory.mktemp("jupyter")
    ipykernel_kernelspec.write_kernel_spec(root / "kernels" / KERNEL_NAME)
    return root


def _read(name):
    return nbformat.read(EXAMPLES / f"{name}.ipynb", as_version=4)


def _execute(name, jupyter_dir, workdir, monkeypatch):
    monkeypatch.setenv("JUPYTER_PATH", str(jupyter_dir))
    monkeypatch.setenv("ADREC_NOTEBOOK_SMALL", "1")
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "3")
    monkeypatch.setenv("KERAS_BACKEND", "tensorflow")
    monkeypatch.setenv("ADREC_DATA_DIR", str(samples.shared_data_dir()))
    python_path = [str(REPO_ROOT)]
    if os.environ.get("PYTHONPATH"):
        python_path.append(os.environ["PYTHONPATH"])
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(python_path))
    # A non-interactive backend from the environment would hide the figures.
    monkeypatch.delenv("MPLBACKEND", raising=False)
    notebook = _read(name)
    client = nbclient.NotebookClient(
        notebook,
        kernel_name=KERNEL_NAME,
        timeout=CELL_TIMEOUT_S,
        resources={"metadata": {"path": str(workdir)}},
    )
    client.execute()
    return notebook


def _outputs(notebook):
    for cell in notebook.cells:
        if cell.cell_type == "code":
            yield from cell.get("outputs", [])


def test_every_notebook_is_tested():
    assert sorted(p.stem for p in EXAMPLES.glob("*.ipynb")) == sorted(NOTEBOOKS)


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_is_committed_without_outputs(name):
    notebook = _read(name)
    nbformat.validate(notebook)
    code = [c for c in notebook.cells if c.cell_type == "code"]
    assert code, f"{name}.ipynb has no code cell"
    for cell in code:
        assert cell.outputs == [], f"{name}.ipynb has outputs: strip them"
        assert cell.execution_count is None, f"{name}.ipynb was executed"
    assert any(c.cell_type == "markdown" for c in notebook.cells)


@pytest.mark.slow
@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_runs(name, jupyter_dir, tmp_path, monkeypatch):
    notebook = _execute(name, jupyter_dir, tmp_path, monkeypatch)
    outputs = list(_outputs(notebook))
    printed = "".join(o.get("text", "") for o in outputs)
    assert RESULT_LINES[name] in printed
    images = [
        o
        for o in outputs
        if o.output_type in ("display_data", "execute_result")
        and "image/png" in o.get("data", {})
    ]
    assert len(images) >= FIGURES.get(name, 0), (
        f"{name}: expected at least {FIGURES.get(name, 0)} PNG figures, "
        f"got {len(images)}"
    )
