"""The demo runs the bootstrap, so a first report shows verdicts instead of "not tested"."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from zipfstage import demo
from zipfstage.stage import StageResult


def _record_fit_settings(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    seen: dict[str, Any] = {}

    def fake(name: str) -> Any:
        def run(section: Any, run_dir: Path, progress: Any) -> StageResult:
            seen[name] = section
            return StageResult(stage=name, summary=name, seconds=0.0)

        return run

    names = ("collect", "fit", "plot", "report")
    monkeypatch.setattr(demo, "stages", lambda: {n: fake(n) for n in names})
    return seen


def test_demo_bootstraps_by_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen = _record_fit_settings(monkeypatch)
    demo.run_demo(tmp_path / "out")
    assert seen["fit"].bootstrap == demo.DEMO_BOOTSTRAP >= 100


def test_demo_bootstrap_flag_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen = _record_fit_settings(monkeypatch)
    demo.run_demo(tmp_path / "out", bootstrap=0)
    assert seen["fit"].bootstrap == 0
