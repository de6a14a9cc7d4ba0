"""The stage kernel's own stderr goes to a log file in the run folder, not to the console.

Why: the console of ``compeffdist run`` shows the stages' progress lines and, at the end, one line per
failure. The Jupyter kernel that runs a stage writes its own log to stderr (transport warnings at
start; a traceback when it is shut down mid-cell by Ctrl-C or SIGTERM), which would bury that line.
The cell errors themselves still reach the runner through the notebook; the kernel's log stays on
disk (``.progress/<stage>.kernel.log``) for whoever needs it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def logged_kernel_manager(log_path: Path) -> type:
    """A kernel manager class (for nbclient's ``kernel_manager_class``) whose kernels write their
    stderr to ``log_path``."""
    from jupyter_client import AsyncKernelManager  # deferred: heavy, only when a stage runs

    class _LoggedKernelManager(AsyncKernelManager):  # type: ignore[misc]
        async def _async_launch_kernel(self, kernel_cmd: list[str], **kw: Any) -> None:
            log_path.parent.mkdir(parents=True, exist_ok=True)
            with log_path.open("ab") as log:  # the child keeps its own descriptor
                kw.setdefault("stderr", log)
                await super()._async_launch_kernel(kernel_cmd, **kw)

    return _LoggedKernelManager
