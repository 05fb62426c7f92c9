"""Schedules: start a workflow on a cron or interval spec, durably and exactly once per fire.

``engine.create_schedule(id, workflow, *args, spec=ScheduleSpec(...), policy=SchedulePolicy(...))`` returns a
:class:`ScheduleHandle`. The pieces: ``_spec`` (:class:`ScheduleSpec`, :class:`SchedulePolicy`, :class:`Overlap`:
validation and fire times), ``_state`` (a schedule's state rebuilt from its history), ``_service`` (the
``ScheduleService`` actor that fires them), ``_handle`` (the Python API). See docs/schedules.md.
"""

from __future__ import annotations

from aion.schedules._handle import ScheduleAction, ScheduleDescription, ScheduleHandle, load_state
from aion.schedules._spec import Overlap, SchedulePolicy, ScheduleSpec, fire_id

__all__ = [
    "Overlap",
    "ScheduleAction",
    "ScheduleDescription",
    "ScheduleHandle",
    "SchedulePolicy",
    "ScheduleSpec",
    "fire_id",
    "load_state",
]
