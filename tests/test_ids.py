"""Workflow and run ids: what is accepted, what is refused and how the refusal reads."""

from __future__ import annotations

import subprocess
import sys
import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aion._ids import (
    MAX_WORKFLOW_ID_BYTES,
    MAX_WORKFLOW_ID_LENGTH,
    new_run_id,
    new_workflow_id,
    validate_run_id,
    validate_workflow_id,
)
from aion.errors import InvalidArgumentError


@pytest.mark.parametrize(
    "value",
    [
        "a",
        "order-1",
        "order 1",
        " padded ",
        "x" * MAX_WORKFLOW_ID_LENGTH,
        "commande-été",
        "注文-1",
        "a/b:c#d",
    ],
)
def test_valid_workflow_ids(value: str) -> None:
    assert validate_workflow_id(value) == value


@pytest.mark.parametrize(
    ("value", "match"),
    [
        ("", "must not be empty"),
        (" ", "only whitespace"),
        ("   ", "only whitespace"),
        ("x" * (MAX_WORKFLOW_ID_LENGTH + 1), "257 characters long, over the limit of 256"),
        ("é" * 200, "400 bytes in UTF-8, over the limit of 256"),
        ("a\nb", r"non-printable character '\\n' \(U\+000A\)"),
        ("a\x00", r"U\+0000"),
        ("tab\there", r"U\+0009"),
        ("\x7f", r"U\+007F"),
        ("a\u200bb", r"U\+200B"),
        ("a\u2028b", r"U\+2028"),
        ("\udc80", r"U\+DC80"),
        (None, "must be a str, not NoneType"),
        (12, "must be a str, not int: 12"),
        (b"order-1", "must be a str, not bytes: b'order-1'"),
    ],
    ids=repr,
)
def test_invalid_workflow_ids(value: object, match: str) -> None:
    with pytest.raises(InvalidArgumentError, match=match) as caught:
        validate_workflow_id(value)
    assert caught.value.code == "invalid_argument"
    assert isinstance(caught.value, ValueError)


def test_error_shows_a_truncated_repr() -> None:
    value = "\x01" + "y" * 500
    with pytest.raises(InvalidArgumentError) as caught:
        validate_workflow_id(value)
    text = str(caught.value)
    assert "'\\x01yyy" in text
    assert text.endswith("...")
    assert len(text) < 160


def test_byte_limit_boundary() -> None:
    assert validate_workflow_id("é" * (MAX_WORKFLOW_ID_BYTES // 2)) == "é" * 128
    with pytest.raises(InvalidArgumentError):
        validate_workflow_id("é" * 128 + "x")


@settings(max_examples=200, deadline=None, database=None)
@given(st.text(max_size=300))
def test_validation_is_total(value: str) -> None:
    try:
        assert validate_workflow_id(value) == value
    except InvalidArgumentError:
        ok = (
            1 <= len(value) <= MAX_WORKFLOW_ID_LENGTH
            and value.isprintable()
            and bool(value.strip())
            and len(value.encode("utf-8", "surrogatepass")) <= MAX_WORKFLOW_ID_BYTES
        )
        assert not ok


def test_new_ids_are_uuid4_and_unique() -> None:
    ids = {new_workflow_id() for _ in range(100)} | {new_run_id() for _ in range(100)}
    assert len(ids) == 200
    for value in ids:
        assert uuid.UUID(value).version == 4
        assert validate_workflow_id(value) == value
        assert validate_run_id(value) == value


FORKED_IDS = """
import os
from aion._ids import new_run_id
read, write = os.pipe()
pid = os.fork()
if pid == 0:
    os.write(write, new_run_id().encode())
    os._exit(0)
os.waitpid(pid, 0)
child = os.read(read, 100).decode()
print(child != new_run_id())
"""


@pytest.mark.timeout(60)
def test_a_forked_process_does_not_repeat_its_parents_ids() -> None:
    # Ids come from a seeded generator: a fork copies its state, so the child must seed again.
    result = subprocess.run([sys.executable, "-c", FORKED_IDS], capture_output=True, text=True, timeout=50, check=True)
    assert result.stdout.strip() == "True", result.stderr


@pytest.mark.parametrize(
    "value",
    ["", "r1", "run-1", str(uuid.uuid4()).upper(), uuid.uuid4().hex, "{" + str(uuid.uuid4()) + "}", None, 5],
    ids=repr,
)
def test_invalid_run_ids(value: object) -> None:
    with pytest.raises(InvalidArgumentError, match="run id must be"):
        validate_run_id(value)
