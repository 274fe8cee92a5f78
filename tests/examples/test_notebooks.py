"""Run every example notebook top to bottom, with the sizes meant for CI.

The notebooks run in a kernel of this interpreter, with
`ADREC_NOTEBOOK_SMALL=1` (the notebooks read it to pick small sizes), the
repository on `PYTHONPATH` and a temporary directory as working directory,
so whatever a notebook writes lands there. A cell that raises fails the
test.

One kernel serves every notebook a pytest process runs (`SharedKernel`):
starting a kernel and importing TensorFlow, Keras and keras_adrec in it
costs about 8-10 s of CPU, as much as a third of a notebook. Before each
notebook a reset cell empties the user namespace (`%reset -f`), clears
Keras' global state and changes to the notebook's own temporary directory,
so a notebook cannot use what an earlier one defined
(`test_shared_kernel_forgets_earlier_notebooks` checks it). A notebook that
fails other than by a cell's error (a timeout, a dead kernel) takes the
kernel down with it: the next notebook starts a fresh one.

The real data samples are optional: `ADREC_DATA_DIR` points the
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
jupyter_client = pytest.importorskip("jupyter_client")
jupyter_core_utils = pytest.importorskip("jupyter_core.utils")

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


# Run before each notebook in the shared kernel. `%reset -f` deletes every
# name the user namespace holds, imported modules included; the names this
# cell needs are deleted again at its end. `clear_session` also collects
# garbage, so what the earlier notebook held is freed.
RESET_CELL = """\
%reset -f
import os
import sys

os.chdir({workdir!r})
if "keras" in sys.modules:
    sys.modules["keras"].backend.clear_session()
if "matplotlib.pyplot" in sys.modules:
    sys.modules["matplotlib.pyplot"].close("all")
del os, sys
"""


def _kernel_env():
    env = dict(os.environ)
    env.update(
        ADREC_NOTEBOOK_SMALL="1",
        TF_CPP_MIN_LOG_LEVEL="3",
        KERAS_BACKEND="tensorflow",
        ADREC_DATA_DIR=str(samples.shared_data_dir()),
    )
    python_path = [str(REPO_ROOT)]
    if os.environ.get("PYTHONPATH"):
        python_path.append(os.environ["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(python_path)
    # A non-interactive backend from the environment would hide the figures.
    env.pop("MPLBACKEND", None)
    return env


class SharedKernel:
    """One Jupyter kernel that runs notebooks one after another.

    Args:
        kernel_dirs: list of str, folders holding the kernel spec
            `KERNEL_NAME`.
    """

    def __init__(self, kernel_dirs):
        self._kernel_dirs = list(kernel_dirs)
        self._km = None
        self._kc = None
        self.starts = 0

    def _alive(self):
        return (
            self._km is not None
            and jupyter_core_utils.run_sync(self._km.is_alive)()
        )

    def _start(self, workdir):
        self.shutdown()
        specs = jupyter_client.kernelspec.KernelSpecManager(
            kernel_dirs=self._kernel_dirs
        )
        self._km = jupyter_client.AsyncKernelManager(
            kernel_name=KERNEL_NAME, kernel_spec_manager=specs
        )
        jupyter_core_utils.run_sync(self._km.start_kernel)(
            cwd=str(workdir), env=_kernel_env()
        )
        self._kc = self._km.client()
        self._kc.start_channels()
        jupyter_core_utils.run_sync(self._kc.wait_for_ready)(timeout=60)
        self.starts += 1

    def execute(self, notebook, workdir):
        """Run `notebook` in `workdir` after the reset cell; return it."""
        if not self._alive():
            self._start(workdir)
        reset = nbformat.v4.new_code_cell(
            RESET_CELL.format(workdir=str(workdir))
        )
        notebook.cells.insert(0, reset)
        client = nbclient.NotebookClient(
            notebook, km=self._km, timeout=CELL_TIMEOUT_S
        )
        # One client for every notebook: a new one costs about 2 s of
        # waiting for the kernel to answer.
        client.kc = self._kc
        try:
            client.execute()
        except nbclient.exceptions.CellExecutionError:
            raise  # a cell raised; the kernel itself is fine
        except BaseException:
            self.shutdown()
            raise
        finally:
            notebook.cells.remove(reset)
        return notebook

    def shutdown(self):
        if self._kc is not None:
            self._kc.stop_channels()
            self._kc = None
        if self._km is not None and self._km.has_kernel:
            jupyter_core_utils.run_sync(self._km.shutdown_kernel)(now=True)
        self._km = None


@pytest.fixture(scope="session")
def kernel(tmp_path_factory):
    """The `SharedKernel` of this pytest process (one per xdist worker)."""
    root = tmp_path_factory.mktemp("jupyter")
    ipykernel_kernelspec.write_kernel_spec(root / "kernels" / KERNEL_NAME)
    shared = SharedKernel([str(root / "kernels")])
    yield shared
    shared.shutdown()


def _read(name):
    return nbformat.read(EXAMPLES / f"{name}.ipynb", as_version=4)


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
def test_notebook_runs(name, kernel, tmp_path):
    notebook = kernel.execute(_read(name), tmp_path)
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


def _notebook(*sources):
    return nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_code_cell(source) for source in sources]
    )


@pytest.mark.slow
def test_shared_kernel_forgets_earlier_notebooks(kernel, tmp_path):
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    kernel.execute(_notebook("import json\nleaked = 1"), first)
    starts = kernel.starts
    with pytest.raises(nbclient.exceptions.CellExecutionError) as error:
        kernel.execute(_notebook("print(leaked)"), second)
    assert "NameError" in str(error.value)
    # The same kernel, with the later notebook's working directory and
    # without the earlier notebook's imports.
    notebook = kernel.execute(
        _notebook("import os\nprint(os.getcwd(), 'json' in dir())"), second
    )
    assert kernel.starts == starts
    assert notebook.cells[0].outputs[0]["text"].split() == [
        str(second),
        "False",
    ]
