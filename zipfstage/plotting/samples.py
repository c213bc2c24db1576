"""The samples figures draw: each (point, metric) read from the store once, sorted once, thinned."""

from __future__ import annotations

from zipfstage.plotting.thinning import SortedSample, sorted_sample
from zipfstage.records import FitTable, lookup
from zipfstage.store.reader import StoreReader

#: axis labels with units; unknown metrics fall back to "<metric> value"
METRIC_LABELS = {
    "rms": "RMS of the hidden state (activation units)",
    "max_abs": "max |activation| over channels (activation units)",
    "mean_abs": "mean |activation| (activation units)",
    "l2_norm": "L2 norm of the hidden state (activation units)",
    "l1_norm": "L1 norm of the hidden state (activation units)",
    "kurtosis": "kurtosis over channels (dimensionless)",
    "channel_wise": "|activation| of one channel (activation units)",
}


def metric_label(metric: str) -> str:
    return METRIC_LABELS.get(metric, f"{metric} value")


class SampleCache:
    """Sorted, thinned samples per (point, metric), so several figures share one read and sort."""

    def __init__(self, reader: StoreReader, table: FitTable | None = None) -> None:
        self.reader = reader
        self.table = table or {}
        self._samples: dict[tuple[str, str], SortedSample] = {}

    def get(self, point: str, metric: str) -> SortedSample:
        key = (point, metric)
        if key not in self._samples:
            # draw the data the fit saw: the same leading positions left out
            skip = lookup(self.table, point, metric).skip_positions or 0
            values = self.reader.metric(point, metric, skip)
            self._samples[key] = sorted_sample(values)
        return self._samples[key]

    def drop_metric(self, metric: str) -> None:
        """Free one metric's samples once its figures are drawn."""
        for key in [k for k in self._samples if k[1] == metric]:
            del self._samples[key]
