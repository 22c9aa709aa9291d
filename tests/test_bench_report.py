"""The benchmark report: target verdicts from a recorded run, and the README summary."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench import report

RUN = Path(__file__).parent / "fixtures" / "bench-scale-1000.json"


def recorded() -> dict[str, Any]:
    results: dict[str, Any] = json.loads(RUN.read_text())
    return results


def verdicts(results: dict[str, Any]) -> dict[str, bool | None]:
    return {row["target"]: row["met"] for row in report.targets(results)}


def test_idle_target_leaves_out_watch_streams() -> None:
    results = recorded()
    idle = results["scale"][0]["idle"]
    assert idle["requests_per_minute"] > 10 >= idle["requests_per_minute_excluding_watch"]
    found = verdicts(results)
    target = "idle ≤ 10 requests/minute at 1000 clusters, apart from watch streams"
    assert found[target] is True
    idle["requests_per_minute_excluding_watch"] = 10.5
    assert verdicts(results)[target] is False


def test_scale_target_is_judged_at_1000_clusters() -> None:
    results = recorded()
    target = "1000 clusters created at once all Ready within 120 s"
    assert verdicts(results)[target] is True
    results["scale"][0]["all_ready_s"] = 121.0
    assert verdicts(results)[target] is False


def test_readme_block_replaces_only_the_marked_section(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{report.README_START}\nold figures\n{report.README_END}\noutro\n")
    results = recorded()
    results["targets"] = report.targets(results)
    assert report.update_readme(results, readme)
    text = readme.read_text()
    assert text.startswith("intro\n") and text.endswith("\noutro\n")
    assert "old figures" not in text
    assert "| 1000 clusters created at once all Ready within 120 s | 108.87 s | met |" in text
    assert text.count(report.README_START) == 1


def test_readme_without_markers_is_left_alone(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text("no markers here\n")
    assert not report.update_readme(recorded(), readme)
    assert readme.read_text() == "no markers here\n"
