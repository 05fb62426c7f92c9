"""Child process of the crash test: append through the recorder as fast as possible, logging every ack.

    python -m tests.store.crash_writer DATA_DIR ACK_FILE THREADS

Each thread owns workflow ``wf-<n>`` (continuing it if an earlier, killed, writer left history) and appends
one to three small events at a time, waiting for each durable acknowledgement and then writing
``<workflow_id> <last seq>`` to ACK_FILE (flushed to the kernel, so the line survives SIGKILL). It runs until
it is killed.
"""

from __future__ import annotations

import random
import sys
import threading
from datetime import UTC, datetime
from typing import TextIO

from aion._ids import new_run_id
from aion.events import Event, SignalReceived, TimerStarted, WorkflowStarted
from aion.recorder import RecorderHandle, start_recorder
from aion.store import open_store

_T0 = datetime(2030, 1, 1, tzinfo=UTC)


def _writer(handle: RecorderHandle, head: int, workflow_id: str, log: TextIO, lock: threading.Lock) -> None:
    rng = random.Random()
    if head == 0:
        started = WorkflowStarted(workflow_id=workflow_id, workflow_type="Crash", input=None, run_id=new_run_id())
        head = handle.append(workflow_id, [started], 0).get()[-1].seq
    n = head
    while True:
        events: list[Event] = []
        for _ in range(rng.randint(1, 3)):
            n += 1
            if n % 7 == 0:
                events.append(TimerStarted(workflow_id=workflow_id, timer_id=n, fire_at=_T0))
            else:
                events.append(SignalReceived(workflow_id=workflow_id, name="s", payload={"n": n, "pad": "x" * 50}))
        head = handle.append(workflow_id, events, head).get()[-1].seq
        with lock:
            log.write(f"{workflow_id} {head}\n")
            log.flush()


def main() -> None:
    """Run the writers until killed."""
    data_dir, ack_file, threads = sys.argv[1], sys.argv[2], int(sys.argv[3])
    store = open_store(data_dir)
    handle = start_recorder(store)
    lock = threading.Lock()
    with open(ack_file, "a", encoding="utf-8") as log:
        workers = [
            threading.Thread(target=_writer, args=(handle, store.head(f"wf-{i}"), f"wf-{i}", log, lock), daemon=True)
            for i in range(threads)
        ]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()


if __name__ == "__main__":
    main()
