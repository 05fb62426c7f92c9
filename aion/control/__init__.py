"""The engine's control socket: how the ``aion`` CLI sees and steers a running engine.

A running :class:`~aion.Engine` serves ``<data_dir>/control.sock`` (mode 0600) with
:class:`ControlServer`; the CLI connects with :func:`connect_engine`. Frames are length-prefixed msgpack maps
(:mod:`aion.control._frames`), requests at most :data:`MAX_FRAME_BYTES` long. The JSON-able answers are built
by :mod:`aion.control._views`, which the CLI also uses on the store files when no engine runs.
"""

from aion.control._client import ControlClient, RemoteError, connect_engine
from aion.control._frames import MAX_FRAME_BYTES, MAX_REPLY_BYTES
from aion.control._server import ControlServer, start_control_server
from aion.control._socket import SOCKET_NAME, socket_path

__all__ = [
    "MAX_FRAME_BYTES",
    "MAX_REPLY_BYTES",
    "SOCKET_NAME",
    "ControlClient",
    "ControlServer",
    "RemoteError",
    "connect_engine",
    "socket_path",
    "start_control_server",
]
