"""What may import what, and that importing zipfstage changes nothing outside it."""

from __future__ import annotations

import subprocess
import sys

import pytest

KEEPS_BACKEND = (
    "import matplotlib; matplotlib.use('svg'); import zipfstage.plotting, zipfstage.report;"
    "import zipfstage.plotting.stage, zipfstage.report.stage;"
    "assert matplotlib.get_backend() == 'svg', matplotlib.get_backend()"
)
DRAWS_WITHOUT_PYPLOT = (
    "import io, sys, matplotlib; matplotlib.use('svg');"
    "from zipfstage.plotting.multi_layer import multi_layer_figure;"
    "fig = multi_layer_figure('rms', []); buffer = io.BytesIO();"
    "fig.savefig(buffer, format='png'); assert buffer.getvalue()[:4] == b'\\x89PNG';"
    "assert 'matplotlib.pyplot' not in sys.modules"
)
READS_FITS_LIGHTLY = (
    "import sys; import zipfstage.records, zipfstage.report.verdict, zipfstage.store.fits;"
    "heavy = {'matplotlib', 'numba', 'torch'} & set(sys.modules); assert not heavy, heavy"
)

#: report and compare show ablate's result from ablate.json, without torch or the model;
#: ablate's targets are chosen (and bad ones refused) before torch loads
READS_ABLATION_WITHOUT_TORCH = (
    "import sys; import zipfstage.report.stage, zipfstage.compare.stage, "
    "zipfstage.store.ablation, zipfstage.ablate.targets, zipfstage.ablate.spec;"
    "heavy = {'torch', 'transformers', 'numba'} & set(sys.modules); assert not heavy, heavy"
)


@pytest.mark.parametrize(
    "code",
    [KEEPS_BACKEND, DRAWS_WITHOUT_PYPLOT, READS_FITS_LIGHTLY, READS_ABLATION_WITHOUT_TORCH],
    ids=[
        "importing-keeps-the-callers-backend",
        "draws-without-pyplot",
        "reads-fits-lightly",
        "reads-ablation-without-torch",
    ],
)
def test_in_a_fresh_interpreter(code: str) -> None:
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
