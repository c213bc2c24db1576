"""What may import what, and that importing zipfstage changes nothing outside it."""

from __future__ import annotations

import subprocess
import sys


def _run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)


def test_importing_plotting_and_report_keeps_the_callers_backend() -> None:
    result = _run(
        "import matplotlib; matplotlib.use('svg'); import zipfstage.plotting, zipfstage.report;"
        "import zipfstage.plotting.stage, zipfstage.report.stage;"
        "assert matplotlib.get_backend() == 'svg', matplotlib.get_backend()"
    )
    assert result.returncode == 0, result.stderr


def test_figures_draw_without_pyplot_on_any_backend() -> None:
    result = _run(
        "import io, sys, matplotlib; matplotlib.use('svg');"
        "from zipfstage.plotting.multi_layer import multi_layer_figure;"
        "fig = multi_layer_figure('rms', []); buffer = io.BytesIO();"
        "fig.savefig(buffer, format='png'); assert buffer.getvalue()[:4] == b'\\x89PNG';"
        "assert 'matplotlib.pyplot' not in sys.modules"
    )
    assert result.returncode == 0, result.stderr


def test_reading_fits_needs_no_plotting_numba_or_torch() -> None:
    result = _run(
        "import sys; import zipfstage.records, zipfstage.report.verdict, zipfstage.store.fits;"
        "heavy = {'matplotlib', 'numba', 'torch'} & set(sys.modules); assert not heavy, heavy"
    )
    assert result.returncode == 0, result.stderr
