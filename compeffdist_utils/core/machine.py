"""What a run ran on: the machine (CPU, cores, memory, GPU) and the versions of the packages that matter,
for the manifest, the report's run card and notebook 00.
"""

from __future__ import annotations

import os
import platform
from importlib import metadata
from typing import Any

REPORTED_PACKAGES = (
    "torch", "transformers", "peft", "accelerate", "sentence-transformers", "scikit-learn", "umap-learn",
    "numpy", "pandas", "papermill", "openai", "compeffdist-kit",
)  # fmt: skip


def package_versions() -> dict[str, str]:
    out = {}
    for name in REPORTED_PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def machine_info() -> dict[str, Any]:
    info: dict[str, Any] = {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
    }
    try:
        import torch  # deferred: heavy, only to describe the GPU

        info["cuda"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    except ImportError:
        info["cuda"] = None
    return info
