"""``Stage.show`` in a real kernel: it saves the PNG and shows exactly that PNG inline."""

from __future__ import annotations

import base64

import matplotlib
import nbformat

matplotlib.use("Agg")  # the helpers draw; these tests only read the figures back


SHOW_CELL = """
import matplotlib.pyplot as plt
from compeffdist_utils.stage.stage import Stage
stage = Stage({name!r}, Params(), Path({run_dir!r}))
fig, ax = plt.subplots()
ax.plot([1, 2, 3])
stage.show(fig, "line")
stage.show(None, "nothing")
print(len(plt.get_fignums()))
"""


def test_show_saves_the_png_and_shows_exactly_it_inline(tmp_path):
    """In a real kernel with its default (inline) backend: one image output, the saved bytes, no twin."""
    from nbclient import NotebookClient

    nb = nbformat.v4.new_notebook()
    nb.metadata = {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}
    setup = "from pathlib import Path\nfrom compeffdist_utils.core.config import Params"
    nb.cells = [
        nbformat.v4.new_code_cell(setup),
        nbformat.v4.new_code_cell(SHOW_CELL.format(name="00_x", run_dir=str(tmp_path))),
    ]
    NotebookClient(nb, timeout=120, kernel_name="python3").execute()
    outputs = nb.cells[1].outputs
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) == 1
    saved = (tmp_path / "figures" / "00_x_line.png").read_bytes()
    assert base64.b64decode(images[0]["data"]["image/png"]) == saved
    assert outputs[-1]["text"].strip() == "0"  # the figure is closed: nothing left open to draw twice
    assert not (tmp_path / "figures" / "00_x_nothing.png").exists()
