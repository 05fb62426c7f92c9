"""The docs keep up with the code: every error class and its code is in the error reference."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

from aion import errors

DOCS = Path(__file__).resolve().parents[1] / "docs"


@pytest.mark.timeout(10)
def test_every_error_class_and_code_is_documented() -> None:
    reference = (DOCS / "errors.md").read_text()
    classes = [c for _, c in inspect.getmembers(errors, inspect.isclass) if issubclass(c, errors.AionError)]
    assert len(classes) > 20
    missing = [f"{c.__name__} ({c.code})" for c in classes if f"`{c.__name__}` | `{c.code}`" not in reference]
    assert not missing, f"docs/errors.md lacks rows for: {missing}"


@pytest.mark.timeout(10)
def test_error_codes_are_unique_per_meaning() -> None:
    classes = [c for _, c in inspect.getmembers(errors, inspect.isclass) if issubclass(c, errors.AionError)]
    by_code: dict[str, list[str]] = {}
    for cls in classes:
        by_code.setdefault(cls.code, []).append(cls.__name__)
    shared = {code: names for code, names in by_code.items() if len(names) > 1}
    # A subclass may keep its base's code only where it is the same kind of error.
    assert shared == {"not_found": ["NotFoundError", "WorkflowNotFoundError"]}, shared
