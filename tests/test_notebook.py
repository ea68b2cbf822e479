"""examples/quickstart.ipynb runs from top to bottom (on small settings) and shows what it promises."""

import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOK = Path(__file__).resolve().parents[1] / "examples" / "quickstart.ipynb"
SMALL = {
    "QUICKSTART_TRAIN_IMAGES": "512",
    "QUICKSTART_TEST_IMAGES": "256",
    "QUICKSTART_EPOCHS": "2",
    "QUICKSTART_POSTS": "300",
}


def outputs(notebook):
    """The text each code cell printed or displayed, and how many pictures it showed."""
    texts, pictures = [], 0
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            texts.append(output.get("text", "") + output.get("data", {}).get("text/plain", ""))
            pictures += "image/png" in output.get("data", {})
    return "\n".join(texts), pictures


@pytest.mark.slow  # about 2 min on 2 shared cores
def test_quickstart_runs(monkeypatch, tmp_path):
    for name, value in SMALL.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join(filter(None, [str(NOTEBOOK.parents[1]), os.environ.get("PYTHONPATH")]))
    )
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(
        notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOK.parent)}}
    ).execute()
    nbformat.write(notebook, tmp_path / "executed.ipynb")  # to look at when an assertion fails
    text, pictures = outputs(notebook)
    assert "collapsed at epoch:" in text and "kNN (k=20, T=0.1): top-1 " in text, text
    assert text.count("#") >= 10, "the five topics of the query"
    assert pictures == 1, "the training plot"
    assert "Warning" not in text and "WARNING" not in text, text
