"""Skip figures whose inputs did not change, as `fit` skips fits: a manifest beside the figures
keeps, per figure, the hash of what it was drawn from (the fits it shows, the store generation
and token count, the outlier analysis, the job's settings) and the files it wrote.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from zipfstage.config import stable_hash
from zipfstage.plotting.jobs import OUTLIER_KINDS, PER_FIT, FigureJob, RunData
from zipfstage.records import lookup

#: bump when a change to the drawing code should redraw every figure
FIGURE_VERSION = 1
MANIFEST_NAME = ".manifest.json"


class InputHasher:
    """The hash of everything one job's figure depends on; each fit is hashed once."""

    def __init__(self, data: RunData, extensions: tuple[str, ...]) -> None:
        self.data = data
        self.common = {
            "store": data.reader.attributes.generation,
            "n_tokens": data.reader.n_tokens,
            "extensions": list(extensions),
            "version": FIGURE_VERSION,
        }
        self._fits: dict[tuple[str, str], str] = {}
        self._all: str | None = None
        self._outliers: str | None = None

    def __call__(self, job: FigureJob) -> str:
        return stable_hash({"job": asdict(job), "inputs": self._inputs(job), **self.common})

    def _inputs(self, job: FigureJob) -> Any:
        if job.kind in PER_FIT:
            return self.fit(job.point or "", job.metric or "")
        if job.kind == "multi_layer":
            return [self.fit(p, job.metric or "") for p in job.points]
        if job.kind in OUTLIER_KINDS:
            if self._outliers is None:
                self._outliers = stable_hash(self.data.outliers)
            return self._outliers
        return self.all_fits()

    def fit(self, point: str, metric: str) -> str:
        key = (point, metric)
        if key not in self._fits:
            self._fits[key] = stable_hash(lookup(self.data.table, point, metric).to_record())
        return self._fits[key]

    def all_fits(self) -> str:
        if self._all is None:
            table = self.data.table
            scalars = {p: {m: f.to_record() for m, f in fits.items()} for p, fits in table.items()}
            channels = {p: [f.to_record() for f in fits] for p, fits in self.data.channels.items()}
            self._all = stable_hash({"scalars": scalars, "channels": channels})
        return self._all


@dataclass
class Manifest:
    """{figure name: {"hash": ..., "files": [paths relative to the folder]}}, one JSON file."""

    directory: Path
    figures: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def load(cls, directory: Path) -> Manifest:
        path = directory / MANIFEST_NAME
        try:
            figures = json.loads(path.read_text())["figures"]
        except (OSError, ValueError, KeyError, TypeError):
            figures = {}  # no manifest, or an unreadable one: draw everything again
        return cls(directory, figures if isinstance(figures, dict) else {})

    def files(self, name: str, input_hash: str) -> list[Path] | None:
        """The files a figure drawn from the same inputs left, if they are all still there."""
        entry = self.figures.get(name)
        if not isinstance(entry, dict) or entry.get("hash") != input_hash:
            return None
        paths = [self.directory / f for f in entry.get("files", [])]
        return paths if all(p.is_file() for p in paths) else None

    def record(self, name: str, input_hash: str, paths: list[Path]) -> None:
        files = [str(p.relative_to(self.directory)) for p in paths]
        self.figures[name] = {"hash": input_hash, "files": files}

    def save(self) -> None:
        """Atomic, so a reader never sees half a manifest."""
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / MANIFEST_NAME
        tmp = path.with_name(f"{MANIFEST_NAME}.tmp")
        tmp.write_text(json.dumps({"figures": self.figures}, sort_keys=True))
        tmp.replace(path)
