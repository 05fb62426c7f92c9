"""The ``aion`` command line: run an engine, look at it and steer it from a shell.

Every command takes ``--data-dir`` (default ``$AION_DATA_DIR``, else ``./aion-data``). Commands talk to the
running engine through its control socket (``<data_dir>/control.sock``); ``list``, ``describe``, ``history``
and ``result`` of a closed run also work from the store files, read-only, when no engine runs. Errors print
``error[<code>]: <message>`` and exit 1; usage errors exit 2. See ``docs/cli.md``.

The package: ``_base`` (the group, shared options and helpers), ``_engine`` (serve, tree, demo), ``_runs``
(list, describe, history), ``_steer`` (start, signal, query, cancel, terminate, result), ``_schedules``
(``aion schedule ...``), ``_versioning`` (replay, unblock, pause, resume, reset), ``_store`` (check, backup) and
``_ui`` (``aion ui``, the ``--ui`` option of serve).
"""

from aion.cli import _engine, _runs, _schedules, _steer, _store, _ui, _versioning
from aion.cli._base import DATA_DIR_ENV, DEFAULT_DATA_DIR, INTERRUPTED, cli

__all__ = ["DATA_DIR_ENV", "DEFAULT_DATA_DIR", "cli", "main"]

# The command modules register their commands on ``cli`` when imported.
_COMMAND_MODULES = (_engine, _runs, _steer, _schedules, _versioning, _store, _ui)


def main() -> None:
    """Entry point of the ``aion`` console script."""
    try:
        cli()
    except KeyboardInterrupt:  # outside a command (while click parses): the same 130
        raise SystemExit(INTERRUPTED) from None
