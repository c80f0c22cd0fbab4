"""Opens an encoder's model.safetensors with Python's safetensors package and checks that every
tensor the manifest's architecture implies is there, finite, float32.

Run by tests/cli_pretrain.rs when EEGADAPT_PYTHON names a Python with safetensors and numpy;
usage: python check_safetensors.py ENCODER_DIR
"""
import json
import pathlib
import sys

import numpy as np
from safetensors.numpy import load_file

folder = pathlib.Path(sys.argv[1])
manifest = json.loads((folder / "encoder.json").read_text())
tensors = load_file(str(folder / "model.safetensors"))
cfg = manifest["pretrain"]["encoder"]
d = cfg["d_model"]
assert tensors["encoder.token.proj.weight"].shape == (d, cfg["n_features"])
for task in manifest["tasks"]:
    assert tensors[f"heads.{task['name']}.weight"].shape == (len(task["classes"]), d)
for name, t in tensors.items():
    assert t.dtype == np.float32, (name, t.dtype)
    assert np.isfinite(t).all(), name
print(f"{len(tensors)} tensors, {sum(t.size for t in tensors.values())} parameters")
