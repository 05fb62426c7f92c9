"""An activity that leaves processes behind: a ``sleep`` child and a double-forked daemon in a session of its own.

It writes their pids to ``<pid_dir>/<attempt>.pids`` and then waits on the ``sleep`` (for an hour)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from aion import activity, workflow


def _daemon() -> int:
    """Double-fork a ``sleep`` in a new session (the classic daemon); its pid."""
    read, write = os.pipe()
    middle = os.fork()
    if middle == 0:  # pragma: no cover - the intermediate
        try:
            os.setsid()
            pid = os.fork()
            if pid == 0:
                os.execvp("sleep", ["sleep", "3601"])
            os.write(write, str(pid).encode())
        finally:
            os._exit(0)
    os.close(write)
    pid = int(os.read(read, 64))
    os.close(read)
    os.waitpid(middle, 0)
    return pid


@activity.defn
def leaves_processes(pid_dir: str) -> None:
    """Start ``sleep 3600`` and a daemon, note their pids, wait on the sleep."""
    child = subprocess.Popen(["sleep", "3600"])
    daemon = _daemon()
    attempt = len(list(Path(pid_dir).glob("*.pids"))) + 1
    tmp = Path(pid_dir, f"{attempt}.tmp")
    tmp.write_text(f"{os.getpid()} {child.pid} {daemon}\n")
    tmp.rename(Path(pid_dir, f"{attempt}.pids"))
    child.wait()


@workflow.defn
async def runs_leaver(pid_dir: str) -> None:
    await workflow.execute_activity(leaves_processes, pid_dir, start_to_close_timeout=7200)
