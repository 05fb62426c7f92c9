"""Leftovers of a zygote that was killed outright: every process of its session.

A zygote leads a session of its own (``setsid``), and every process child, and whatever those start, stays in
it unless it makes a session itself (a daemon: the zygote, their subreaper, kills those while it lives). If the
zygote itself dies by SIGKILL, together with its owner, nothing is left to kill its descendants: the next owner
finds them by that session id (`kill_session`) and kills them before it starts anything.

A session id is the pid of the process that made it. The kernel does not hand out a pid while a process uses it
as its session id, so a session is recognised safely by (zygote pid, zygote start time): if a process with that
pid lives with another start time, the old session is gone.
"""

from __future__ import annotations

import contextlib
import os
import signal


def _stat(pid: int) -> list[str] | None:
    """The fields of ``/proc/<pid>/stat`` after the command name (field 3, the state, first)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            text = f.read()
    except OSError:
        return None
    return text[text.rfind(")") + 2 :].split()


def start_time(pid: int) -> int | None:
    """The start time of the live process ``pid`` (clock ticks since boot), or None."""
    fields = _stat(pid)
    return None if fields is None else int(fields[19])


def session_members(sid: int) -> list[int]:
    """The live processes whose session id is ``sid``."""
    members = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            fields = _stat(int(name))
            if fields is not None and fields[0] != "Z" and int(fields[3]) == sid:
                members.append(int(name))
    return members


def kill_session(sid: int, started: int, *, rounds: int = 50) -> int:
    """SIGKILL every process of the session a zygote of pid ``sid`` started at ``started`` made; how many.

    Nothing is killed if ``sid`` is now another process (its start time differs): that session is gone.
    """
    now = start_time(sid)
    if now is not None and now != started:
        return 0
    killed: set[int] = set()
    for _ in range(rounds):
        members = [pid for pid in session_members(sid) if pid != os.getpid()]
        if not members:
            break
        for pid in members:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
            killed.add(pid)
    return len(killed)
