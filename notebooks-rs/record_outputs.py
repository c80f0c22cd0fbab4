#!/usr/bin/env python3
"""Runs each notebook's code (its compiled twin, examples/notebook_NN.rs) and saves what every
cell printed into the notebook as that cell's outputs, SVG plots inline.

The twin is the notebook's code cells in order, extracted by tests/notebooks.rs; it prints
`@@cell N` before cell N's output and shows plots with evcxr's display protocol
(EVCXR_BEGIN_CONTENT mime ... EVCXR_END_CONTENT), so outputs land where the kernel would put them.

Usage (from the crate's folder): python3 notebooks-rs/record_outputs.py
"""
import json
import pathlib
import re
import shutil
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent


def outputs_of(text):
    """Jupyter outputs from one cell's printed text: stream text and display_data blocks."""
    outputs, plain = [], []
    parts = re.split(r"EVCXR_BEGIN_CONTENT (\S+)\n(.*?)\nEVCXR_END_CONTENT\n?", text, flags=re.S)
    # re.split gives [text, mime, data, text, mime, data, ..., text]
    for i in range(0, len(parts), 3):
        if parts[i]:
            outputs.append({"name": "stdout", "output_type": "stream", "text": parts[i].splitlines(True)})
        if i + 2 < len(parts):
            mime, data = parts[i + 1], parts[i + 2]
            outputs.append({"data": {mime: data.splitlines(True)}, "metadata": {}, "output_type": "display_data"})
    return outputs


def main():
    notebooks = sorted((ROOT / "notebooks-rs").glob("*.ipynb"))
    names = [f"notebook_{nb.name.split('-')[0]}" for nb in notebooks]
    subprocess.run(["cargo", "build", "--release", "--quiet"] + sum((["--example", n] for n in names), []),
                   cwd=ROOT, check=True)
    # The notebooks write under target/notebooks: start from nothing, as a first run would.
    shutil.rmtree(ROOT / "target" / "notebooks", ignore_errors=True)
    for nb_path, name in zip(notebooks, names):
        run = subprocess.run([str(ROOT / "target/release/examples" / name)], cwd=ROOT,
                             capture_output=True, text=True)
        if run.returncode != 0:
            sys.exit(f"{name} failed:\n{run.stderr}")
        chunks = re.split(r"^@@cell (\d+)\n", run.stdout, flags=re.M)
        by_cell = {int(chunks[i]): chunks[i + 1] for i in range(1, len(chunks), 2)}
        nb = json.loads(nb_path.read_text())
        count = 0
        for i, cell in enumerate(nb["cells"]):
            if cell["cell_type"] != "code":
                continue
            count += 1
            cell["execution_count"] = count
            cell["outputs"] = outputs_of(by_cell.get(i, ""))
        nb["metadata"]["eegadapt"] = {
            "outputs": f"recorded by notebooks-rs/record_outputs.py from examples/{name}.rs (release build)",
        }
        nb_path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
        print(f"{nb_path.name}: {count} code cells, outputs saved")


if __name__ == "__main__":
    main()
