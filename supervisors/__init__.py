"""supervisors: OTP-style supervision of OS processes on pykka (usable without aion).

A `Supervisor` is a pykka actor that starts children from specs (`ProcessSpec`, `ActorSpec`, nested
`SupervisorSpec`), restarts them by strategy (`Strategy`) and restart type (`Restart`) within a restart
intensity, and escalates to its parent when that intensity is exceeded. Process children run a Python
callable in their own OS process, forked from a `Zygote` (optionally handed over from a warm pool), and talk
to their owner over a msgpack `Channel`. Process children can be linked and monitored (`Down`,
`ExitSignal`); every exit has an `ExitReason`. Every error the library raises derives from `SupervisionError`.

Example::

    import supervisors as sv

    def worker(channel: sv.Channel, name: str) -> None:
        while True:
            channel.send(["pong", channel.recv()])

    if __name__ == "__main__":
        zygote = sv.Zygote.start(warm_pool=2)          # first, before any thread
        root = sv.Supervisor.start(sv.SupervisorSpec(id="root", children=[
            sv.ProcessSpec(id="w1", target=worker, args=("w1",)),
        ]), zygote=zygote)
        print(root.tree())
        root.stop()
        zygote.stop()
"""

from ._affinity import run_on
from ._batch import Batch
from ._channel import Channel, OwnerChannel
from ._children import ChildInfo
from ._errors import (
    ChannelClosedError,
    SpawnError,
    StartError,
    SupervisionError,
    SupervisorError,
    TargetError,
    ZygoteError,
)
from ._inbox import SimpleInbox
from ._leftovers import kill_session, start_time
from ._reasons import Down, ExitReason, ExitSignal
from ._specs import ActorSpec, ChildSpec, ProcessSpec, Restart, Strategy, SupervisorSpec
from ._supervisor import Supervisor
from ._zygote import Zygote

__all__ = [
    "ActorSpec",
    "Batch",
    "Channel",
    "ChannelClosedError",
    "ChildInfo",
    "ChildSpec",
    "Down",
    "ExitReason",
    "ExitSignal",
    "OwnerChannel",
    "ProcessSpec",
    "Restart",
    "SimpleInbox",
    "SpawnError",
    "StartError",
    "Strategy",
    "SupervisionError",
    "Supervisor",
    "SupervisorError",
    "SupervisorSpec",
    "TargetError",
    "Zygote",
    "ZygoteError",
    "kill_session",
    "run_on",
    "start_time",
]
