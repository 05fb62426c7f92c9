"""``aion start --search-attr/--memo``, ``aion list --query`` and ``aion count --query``, through a running
``aion serve`` and then from the files with no engine."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli.conftest import aion, serve  # noqa: F401 - the fixture is used by name


def ok(*args: str | Path) -> object:
    result = aion(*args)
    assert result.code == 0, result.err
    return result


@pytest.mark.timeout(120)
def test_list_and_count_by_query_live_then_from_files(serve: object, tmp_path: Path) -> None:  # noqa: F811
    data = tmp_path / "data"
    server = serve(data, "--search-attribute", "CustomerId=keyword", "--search-attribute", "Amount=float")  # type: ignore[operator]
    for i in range(4):
        ok("start", "collector", "--input", "5", "--id", f"o-{i}", "--search-attr", f"CustomerId=c-{i % 2}",
           "--search-attr", f"Amount={i}", "--memo", json.dumps({"n": i}), "--data-dir", data)  # fmt: skip
    bad = aion("start", "collector", "--input", "5", "--search-attr", "Amount=lots", "--data-dir", data)
    assert bad.code == 1 and "error[invalid_argument]" in bad.err and "Amount" in bad.err
    query = "CustomerId = 'c-1' AND Amount > 0 ORDER BY Amount DESC"
    live = ok("list", "--query", query, "--json", "--data-dir", data).json()  # type: ignore[attr-defined]
    assert [w["workflow_id"] for w in live["workflows"]] == ["o-3", "o-1"]
    assert live["workflows"][0]["memo"] == {"n": 3} and live["next_page_token"] is None
    paged = ok("list", "--query", query, "--page-size", "1", "--json", "--data-dir", data).json()  # type: ignore[attr-defined]
    assert [w["workflow_id"] for w in paged["workflows"]] == ["o-3"] and paged["next_page_token"]
    counted = ok("count", "--query", "Amount >= 1 GROUP BY Status", "--json", "--data-dir", data).json()  # type: ignore[attr-defined]
    assert counted == {"count": 3, "groups": {"running": 3}}
    malformed = aion("list", "--query", "Amount >", "--data-dir", data)
    assert malformed.code == 1 and "position 8" in malformed.err
    server.stop()  # type: ignore[attr-defined]

    offline = ok("list", "--query", query, "--json", "--data-dir", data).json()  # type: ignore[attr-defined]
    assert offline == live
    assert ok("count", "--query", "Amount >= 1 GROUP BY Status", "--json", "--data-dir", data).json() == counted  # type: ignore[attr-defined]
    text = ok("count", "--data-dir", data).out  # type: ignore[attr-defined]
    assert text.splitlines()[0] == "4"
