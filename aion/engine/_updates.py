"""Updates from the core's side: validate in the run's process, record the acceptance, reply with the result.

``UpdateAccepted`` and ``UpdateCompleted`` are built here. An update goes through three steps: the validator
runs in the workflow process as a query would (``VALIDATE_UPDATE``: nothing is recorded, a rejection ends it
there); then ``UpdateAccepted`` is recorded and delivered to the process like a signal (replayed after any
crash); then the handler's ``CompleteUpdate`` command is recorded as ``UpdateCompleted`` and the caller gets its
result. An update id seen before is never applied twice: the caller waits for (or reads) the recorded outcome.
Runs inside the core's thread.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pykka

from aion import events as ev
from aion._codec import check_payload
from aion.engine._interfaces import Core
from aion.engine._messages import UpdateWorkflow
from aion.engine._process_links import ProcessLinks
from aion.engine._runs import Run
from aion.errors import (
    AionError,
    UpdateFailedError,
    UpdateRejectedError,
    WorkflowNotFoundError,
    WorkflowNotRunningError,
)
from aion.store import EventStore
from aion.workflow._commands import CompleteUpdate
from aion.workflow._updates import VALIDATE_UPDATE


class _Validation(pykka.ThreadingFuture[Any]):
    """The reply future of a validation query: calls ``done`` (in the core's thread, where query answers are
    handled) with None when the validator accepted, or the error when it did not."""

    def __init__(self, done: Callable[[BaseException | None], None]) -> None:
        super().__init__()
        self._done = done

    def set(self, value: Any = None) -> None:
        super().set(value)
        self._done(None)

    def set_exception(self, exc_info: Any = None) -> None:
        super().set_exception(exc_info)
        error = exc_info[1] if isinstance(exc_info, tuple) else exc_info
        self._done(error if isinstance(error, BaseException) else AionError(str(error)))


class Updates:
    """The updates of the core's runs: the callers waiting for each update id."""

    def __init__(self, core: Core, store: EventStore, links: ProcessLinks) -> None:
        self._core = core
        self._store = store
        self._links = links
        #: Callers waiting for an accepted update's outcome, by (workflow id, update id).
        self._waiting: dict[tuple[str, str], list[pykka.Future[Any]]] = {}

    def update(self, request: UpdateWorkflow) -> None:
        """Validate, then accept update ``name`` for the workflow's open run (see the module docstring)."""
        workflow_id, name, args, update_id, reply = (
            request.workflow_id,
            request.name,
            request.args,
            request.update_id,
            request.reply,
        )
        run = self._open_run(workflow_id)
        key = (workflow_id, update_id)
        if key in self._waiting:  # accepted already, not completed yet: wait for the same outcome
            self._waiting[key].append(reply)
            return
        recorded = None if request.fresh else self._recorded(run, update_id)
        if isinstance(recorded, ev.UpdateCompleted):
            _answer(reply, name, recorded)
            return
        if recorded is not None:  # accepted before the engine restarted; its replay will complete it
            self._waiting[key] = [reply]
            return

        def validated(error: BaseException | None) -> None:
            if error is not None:
                reply.set_exception((UpdateRejectedError, UpdateRejectedError(str(error)), None))
                return
            self._accept(workflow_id, name, args, update_id, reply)

        check_payload(args, path=f"update {name!r} args")
        self._links.query(workflow_id, run, VALIDATE_UPDATE, [name, args], _Validation(validated))

    def _accept(self, workflow_id: str, name: str, args: list[Any], update_id: str, reply: pykka.Future[Any]) -> None:
        """The validator accepted: record ``UpdateAccepted`` (the run may have closed meanwhile)."""
        try:
            run = self._open_run(workflow_id)
        except AionError as error:
            reply.set_exception((type(error), error, None))
            return
        self._waiting.setdefault((workflow_id, update_id), []).append(reply)
        accepted = ev.UpdateAccepted(workflow_id=workflow_id, update_id=update_id, name=name, args=args)
        self._core.append(run, [accepted])

    def completed(self, run: Run, command: CompleteUpdate) -> None:
        """The handler returned (or raised): record ``UpdateCompleted``, then answer the callers."""
        result, failure = command.result, command.failure
        try:
            check_payload(result, path=f"update {command.update_id!r} result")
        except AionError as error:
            result, failure = None, ev.Failure(type(error).__name__, str(error))
        event = ev.UpdateCompleted(
            workflow_id=run.workflow_id, update_id=command.update_id, result=result, failure=failure
        )

        def answer(stamped: list[ev.Event]) -> None:
            done = stamped[0]
            assert isinstance(done, ev.UpdateCompleted)
            for waiter in self._waiting.pop((run.workflow_id, command.update_id), []):
                _answer(waiter, command.update_id, done)

        self._core.append(run, [event], then=answer)

    def closed(self, run: Run) -> None:
        """The run closed: its updates that did not complete will not."""
        for key in [key for key in self._waiting if key[0] == run.workflow_id]:
            error = WorkflowNotRunningError(f"workflow {run.workflow_id!r} closed before update {key[1]!r} completed")
            for waiter in self._waiting.pop(key):
                waiter.set_exception((WorkflowNotRunningError, error, None))

    def _open_run(self, workflow_id: str) -> Run:
        run = self._core.live(workflow_id)
        if run is not None and not run.state.closing:
            return run
        info = self._store.get_run(workflow_id)
        if info is None:
            raise WorkflowNotFoundError(workflow_id)
        status = info.status.value if info.is_running is False else "closing"
        raise WorkflowNotRunningError(f"workflow {workflow_id!r} is {status}: it takes no updates")

    def _recorded(self, run: Run, update_id: str) -> ev.Event | None:
        """The run's ``UpdateCompleted`` for ``update_id``, else its ``UpdateAccepted``, else None."""
        found: ev.Event | None = None
        for event in self._store.read_run(run.workflow_id, run.run_id):
            if isinstance(event, ev.UpdateCompleted) and event.update_id == update_id:
                return event
            if isinstance(event, ev.UpdateAccepted) and event.update_id == update_id:
                found = event
        return found


def _answer(reply: pykka.Future[Any], name: str, completed: ev.UpdateCompleted) -> None:
    failure = completed.failure
    if failure is None:
        reply.set(completed.result)
        return
    error = UpdateFailedError(
        f"update {name!r} failed: {failure.type}: {failure.message}",
        type=failure.type,
        traceback=failure.traceback,
        details=failure.details,
    )
    reply.set_exception((UpdateFailedError, error, None))
