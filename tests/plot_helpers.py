"""Shared by the plot and report tests: realistic fit records written straight into a store.

Until a test needs the real `fit` stage, records come from a quick continuous MLE with a KS scan
over candidate xmin (Clauset et al.'s method, coarsely), so alpha, xmin and the curves are honest.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

from zipfstage.store import open_store
from zipfstage.store.fits import write_fit

FAILED_REASON = "fewer than 50 values above any candidate xmin"


def quick_fit(
    raw: np.ndarray, candidates: int = 24
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """A record and scan curves for positive data, in the fit stage's record format."""
    data = np.sort(raw[np.isfinite(raw) & (raw > 0)].astype(np.float64))
    scan_xmin = np.quantile(data, np.linspace(0.5, 0.98, candidates))
    scan_alpha, scan_ks = [], []
    for xmin in scan_xmin:
        tail = data[data >= xmin]
        alpha = 1 + len(tail) / np.sum(np.log(tail / xmin))
        empirical = np.arange(len(tail)) / len(tail)
        model = 1 - (tail / xmin) ** (1 - alpha)
        scan_alpha.append(alpha)
        scan_ks.append(float(np.max(np.abs(empirical - model))))
    best = int(np.argmin(scan_ks))
    xmin, alpha = float(scan_xmin[best]), float(scan_alpha[best])
    tail = data[data >= xmin]
    sigma = (alpha - 1) / np.sqrt(len(tail))
    ranks = np.arange(len(tail), 0, -1)
    fit = stats.linregress(np.log10(ranks), np.log10(tail))
    log_tail = np.log(tail)
    shape, _, scale = stats.weibull_min.fit(tail, floc=0)
    record = {
        "status": "ok",
        "reason": None,
        "flags": [],
        "discrete": False,
        "alpha": alpha,
        "xmin": xmin,
        "xmax": float(data[-1]),
        "ks_distance": scan_ks[best],
        "n_tail": len(tail),
        "n": len(data),
        "n_dropped": int(len(raw) - len(data)),
        "sigma": sigma,
        "alpha_ci": [alpha - 1.96 * sigma, alpha + 1.96 * sigma],
        "xmin_ci": None,
        "p_value": None,
        "slope": float(fit.slope),
        "intercept": float(fit.intercept),
        "r2": float(fit.rvalue**2),
        "comparisons": {
            "lognormal": {
                "R": 1.8,
                "p": 0.07,
                "params": {"mu": float(log_tail.mean()), "sigma": float(log_tail.std())},
            },
            "exponential": {
                "R": 25.0,
                "p": 0.001,
                "params": {"lambda": float(1 / np.mean(tail - xmin))},
            },
            "stretched_exponential": {
                "R": 0.9,
                "p": 0.4,
                "params": {"lambda": float(1 / scale), "beta": float(shape)},
            },
            "truncated_power_law": {
                "R": -0.6,
                "p": 0.27,
                "params": {"alpha": alpha - 0.05, "lambda": 1e-3 / xmin},
            },
        },
    }
    curves = {
        "scan_xmin": scan_xmin,
        "scan_ks": np.array(scan_ks),
        "scan_alpha": np.array(scan_alpha),
    }
    return record, curves


def write_synthetic_fits(
    out_dir: Path, bootstrap: bool = True, failed: tuple[str, str] | None = ("layer_3", "kurtosis")
) -> dict[str, dict[str, Any]]:
    """Fit every (point, metric) of a synthetic store; one bootstrap and one failure by default."""
    reader = open_store(out_dir)
    rng = np.random.default_rng(1)
    written: dict[str, dict[str, Any]] = {}
    for p_index, point in enumerate(reader.points):
        for metric in reader.metrics:
            values = reader.metric(point, metric)
            if metric == "channel_wise":
                records = []
                for column, channel in enumerate(reader.channel_indices):
                    record, _ = quick_fit(values[:, column])
                    records.append({**record, "channel": channel})
                write_fit(out_dir, point, metric, records, "test")
                written.setdefault(point, {})[metric] = records
                continue
            record, curves = quick_fit(values)
            if (point, metric) == failed:
                record = {
                    "status": "failed",
                    "reason": FAILED_REASON,
                    "n": len(values),
                    "alpha": None,
                    "xmin": None,
                    "slope": record["slope"],
                    "r2": record["r2"],
                    "comparisons": {},
                }
                curves = {}
            elif bootstrap and p_index == 0 and metric == "rms":
                draws = record["alpha"] + record["sigma"] * rng.standard_normal(200)
                curves["bootstrap_alpha"] = draws
                curves["bootstrap_xmin"] = record["xmin"] * np.exp(0.1 * rng.standard_normal(200))
                record["p_value"] = 0.42
            elif p_index == 1 and metric == "rms":
                record["p_value"] = 0.03
                record["comparisons"]["lognormal"] = {
                    **record["comparisons"]["lognormal"],
                    "R": -3.2,
                    "p": 0.01,
                }
            write_fit(out_dir, point, metric, record, "test", curves)
            written.setdefault(point, {})[metric] = record
    return written
