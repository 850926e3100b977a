"""notebooks/custom_topology.ipynb runs end to end (tiny settings) and shows its figures and table.

The notebook is executed in a temporary copy with ``GRAPHNET_NOTEBOOK_QUICK=1`` (2 seeds, up to 5
steps, 500 test images, a hidden superneuron of 32); cells are found by their tags. The kernel is
this interpreter: a kernelspec written to the temporary folder runs ``sys.executable``, so a
``python3`` kernelspec of another environment (user or system) cannot take over.
"""
import json
import shutil
import sys
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")
pytest.importorskip("matplotlib")

from jupyter_client.kernelspec import KernelSpecManager  # noqa: E402  (a dependency of nbclient)
from jupyter_client.manager import KernelManager  # noqa: E402

from graphnet.data import DataUnavailableError, load  # noqa: E402

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "custom_topology.ipynb"
KERNEL = "graphnet-test"


def tagged(nb, tag):
    cells = [c for c in nb.cells if tag in c.metadata.get("tags", [])]
    assert len(cells) == 1, f"expected one cell tagged {tag!r}, found {len(cells)}"
    return cells[0]


def stdout(cell) -> str:
    return "".join(o.text for o in cell.outputs if o.output_type == "stream" and o.name == "stdout")


def has_png(cell) -> bool:
    return any("image/png" in o.get("data", {}) for o in cell.outputs)


def kernel_manager(folder: Path) -> KernelManager:
    spec = folder / "kernels" / KERNEL
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "graphnet test", "language": "python"}))
    specs = KernelSpecManager(kernel_dirs=[str(folder / "kernels")])
    return KernelManager(kernel_name=KERNEL, kernel_spec_manager=specs)


def test_custom_topology_notebook(tmp_path, monkeypatch):
    try:
        load("mnist", "test")
    except DataUnavailableError as error:
        pytest.skip(f"MNIST is not installed: {error}")
    work = tmp_path / "notebooks"
    work.mkdir()
    path = Path(shutil.copy(NOTEBOOK, work))
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:  # the committed copy carries the outputs of a full run: start clean
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None

    monkeypatch.setenv("GRAPHNET_NOTEBOOK_QUICK", "1")
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    client = nbclient.NotebookClient(nb, km=kernel_manager(tmp_path), timeout=300,
                                     resources={"metadata": {"path": str(work)}})
    client.execute()  # raises CellExecutionError naming the cell on any error

    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors
    assert has_png(tagged(nb, "graph-plot")), "the topology drawing produced no figure"
    assert has_png(tagged(nb, "curves-plot")), "the learning-curve plot produced no figure"
    assert "shipped genome" in stdout(tagged(nb, "train"))
    table = stdout(tagged(nb, "table"))
    for row in ("shipped genome", "SGD (best lr)", "Adam (best lr)"):
        assert row in table, f"table lacks the {row!r} row:\n{table}"
    assert "| 5 steps |" in table and "| 10 steps |" not in table, "QUICK settings were not used"
    io = stdout(tagged(nb, "genome-io"))
    assert "same genome after save/load: True" in io
    assert "pixels -> hidden [784, 32, " in io  # QUICK: a hidden superneuron of 32
