"""Fit results in the store: thinned channel curves, and writes a kill cannot leave half done."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import zarr

from tests.synthetic_store import make_synthetic_store
from zipfstage.store import fits
from zipfstage.store.curve_thinning import chosen_index, thin_curve, thin_indices
from zipfstage.store.fits import read_fit_curves, read_fit_records, read_input_hash, write_fit
from zipfstage.store.layout import fit_group_name, store_path


def test_thin_keeps_ends_and_chosen_and_is_log_spaced() -> None:
    xmins = np.unique(np.random.default_rng(1).pareto(1.5, 20_000) + 1)
    chosen = 12_345
    keep = thin_indices(xmins, chosen, n_points=300)
    assert keep[0] == 0 and keep[-1] == xmins.size - 1 and chosen in keep
    assert np.all(np.diff(keep) > 0) and 50 <= keep.size <= 302
    # log-spaced: no step of the log grid falls between two kept points without a candidate
    # kept for it, i.e. consecutive kept points span at most one step (bar the gap to the next)
    logs = np.log(xmins)
    step = (logs[-1] - logs[0]) / 299
    assert np.all(logs[keep[1:] - 1] - logs[keep[:-1]] <= step + 1e-9)
    x, y = thin_curve(xmins, xmins * 2, chosen_index=chosen)
    np.testing.assert_array_equal(y, 2 * x)
    assert xmins[chosen] in x


def test_thin_short_curve_unchanged() -> None:
    xmins = np.arange(1.0, 51.0)
    np.testing.assert_array_equal(thin_indices(xmins, 3, n_points=300), np.arange(50))


def test_chosen_index_prefers_stored_xmin_then_ks_minimum() -> None:
    xmins = np.array([1.0, 2.0, 3.0, 4.0])
    ks = np.array([0.5, 0.1, 0.3, 0.4])
    assert chosen_index(xmins, 3.0, ks) == 2
    assert chosen_index(xmins, 3.5, ks) == 1
    assert chosen_index(xmins, None, np.full(4, np.nan)) is None


def _channel_fit(rng: np.random.Generator, channels: list[int], n: int) -> tuple[list, dict]:
    records, parts = [], {}
    for c in channels:
        xmin = np.unique(rng.pareto(1.5, n) + 1)
        ks = np.abs(np.log(xmin) - np.log(xmin[n // 3])) + 0.01
        chosen = float(xmin[n // 3 + c])  # not the KS minimum, to check the record wins
        records.append({"status": "ok", "channel": c, "xmin": chosen})
        curve = {"scan_xmin": xmin, "scan_ks": ks, "scan_alpha": ks * 2, "scan_exact": ks * 0 + 1}
        curve["scan_channel"] = np.full(xmin.size, float(c))
        for key, values in curve.items():
            parts.setdefault(key, []).append(values)
    return records, {k: np.concatenate(v) for k, v in parts.items()}


def test_channel_fits_are_thinned_per_channel_point_fits_are_not(tmp_path: Path) -> None:
    make_synthetic_store(tmp_path, n_batches=1, seq_len=16)
    rng = np.random.default_rng(0)
    records, curves = _channel_fit(rng, [3, 7], 5_000)
    write_fit(tmp_path, "embed", "channel_wise", records, "h", curves)
    stored = read_fit_curves(tmp_path, "embed", "channel_wise")
    for record in records:
        mine = stored["scan_channel"] == record["channel"]
        assert 50 <= mine.sum() <= 302
        assert record["xmin"] in stored["scan_xmin"][mine]
        assert np.all(np.diff(stored["scan_xmin"][mine]) > 0)
        full = curves["scan_channel"] == record["channel"]
        at = np.searchsorted(curves["scan_xmin"][full], stored["scan_xmin"][mine])
        np.testing.assert_array_equal(curves["scan_ks"][full][at], stored["scan_ks"][mine])
    write_fit(tmp_path, "embed", "rms", {"status": "ok", "xmin": 2.0}, "h", curves)
    assert read_fit_curves(tmp_path, "embed", "rms")["scan_xmin"].size == curves["scan_xmin"].size


def _crash(*args: object, **kwargs: object) -> None:
    raise KeyboardInterrupt("killed")


def test_kill_before_the_record_leaves_the_old_fit_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_synthetic_store(tmp_path, n_batches=1, seq_len=16)
    old = {"scan_ks": np.array([1.0, 2.0])}
    write_fit(tmp_path, "embed", "rms", {"alpha": 2.0}, "old-hash", old)
    with monkeypatch.context() as patch:
        patch.setattr(fits, "_publish", _crash)
        with pytest.raises(KeyboardInterrupt):
            write_fit(tmp_path, "embed", "rms", {"alpha": 3.0}, "new-hash", {"scan_ks": [9.0]})
    assert _unstamped(read_fit_records(tmp_path)["embed"]["rms"]) == {"alpha": 2.0}
    np.testing.assert_array_equal(read_fit_curves(tmp_path, "embed", "rms")["scan_ks"], [1, 2])
    assert read_input_hash(tmp_path, "embed", "rms") == "old-hash"  # a rerun does not skip
    write_fit(tmp_path, "embed", "rms", {"alpha": 3.0}, "new-hash", {"scan_ks": [9.0]})
    assert _unstamped(read_fit_records(tmp_path)["embed"]["rms"]) == {"alpha": 3.0}
    np.testing.assert_array_equal(read_fit_curves(tmp_path, "embed", "rms")["scan_ks"], [9])
    group = zarr.open_group(store_path(tmp_path), mode="r")[fit_group_name("embed", "rms")]
    assert len(list(group.members())) == 1  # the orphaned curves are gone


def test_kill_before_cleanup_shows_the_new_fit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_synthetic_store(tmp_path, n_batches=1, seq_len=16)
    write_fit(tmp_path, "embed", "rms", {"alpha": 2.0}, "old-hash", {"scan_ks": [1.0]})
    with monkeypatch.context() as patch:
        patch.setattr(fits, "_remove_stale", _crash)
        with pytest.raises(KeyboardInterrupt):
            write_fit(tmp_path, "embed", "rms", {"alpha": 3.0}, "new-hash", {"scan_ks": [9.0]})
    assert _unstamped(read_fit_records(tmp_path)["embed"]["rms"]) == {"alpha": 3.0}
    assert read_input_hash(tmp_path, "embed", "rms") == "new-hash"
    np.testing.assert_array_equal(read_fit_curves(tmp_path, "embed", "rms")["scan_ks"], [9])


def test_kill_during_a_first_fit_leaves_no_record(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_synthetic_store(tmp_path, n_batches=1, seq_len=16)
    write_fit(tmp_path, "embed", "max_abs", {"alpha": 2.5}, "h", {})
    monkeypatch.setattr(fits, "_publish", _crash)
    with pytest.raises(KeyboardInterrupt):
        write_fit(tmp_path, "embed", "rms", {"alpha": 3.0}, "h", {"scan_ks": [9.0]})
    assert read_input_hash(tmp_path, "embed", "rms") is None
    assert _unstamped(read_fit_records(tmp_path)["embed"]["max_abs"]) == {"alpha": 2.5}
    assert list(read_fit_records(tmp_path)) == ["embed"] and list(
        read_fit_records(tmp_path)["embed"]
    ) == ["max_abs"]
    assert read_fit_curves(tmp_path, "embed", "rms") == {}


def test_reads_curves_of_the_layout_before_subgroups(tmp_path: Path) -> None:
    make_synthetic_store(tmp_path, n_batches=1, seq_len=16)
    root = zarr.open_group(store_path(tmp_path), mode="r+")
    group = root.require_group(fit_group_name("embed", "rms"))
    group.create_array("scan_ks", data=np.array([4.0, 5.0]))
    group.attrs.update({"record": {"alpha": 2.0}, "input_hash": "h"})
    np.testing.assert_array_equal(read_fit_curves(tmp_path, "embed", "rms")["scan_ks"], [4, 5])
    write_fit(tmp_path, "embed", "rms", {"alpha": 3.0}, "h2", {"scan_ks": [6.0]})
    np.testing.assert_array_equal(read_fit_curves(tmp_path, "embed", "rms")["scan_ks"], [6])
    assert "scan_ks" not in group  # old-layout arrays removed once the new fit is published


def test_diagnostics_draw_a_thinned_channel_curve(tmp_path: Path) -> None:
    from zipfstage.plotting.diagnostics import diagnostics_figure
    from zipfstage.records import FitRecord

    make_synthetic_store(tmp_path, n_batches=1, seq_len=16)
    records, curves = _channel_fit(np.random.default_rng(2), [5], 4_000)
    records[0].update(alpha=2.5)
    write_fit(tmp_path, "embed", "channel_wise", records, "h", curves)
    stored = read_fit_curves(tmp_path, "embed", "channel_wise")
    fit = FitRecord.from_record("embed", "channel_wise", records[0])
    figure = diagnostics_figure(fit, stored)
    line_x = [np.asarray(line.get_xdata()) for line in figure.axes[0].get_lines()]
    assert any(x.size == stored["scan_xmin"].size for x in line_x)  # the thinned scan itself
    assert any(np.all(x == records[0]["xmin"]) for x in line_x)  # the chosen-xmin marker


def _unstamped(record: dict[str, object]) -> dict[str, object]:
    """A stored record without the store generation write_fit stamps on it."""
    return {key: value for key, value in record.items() if key != "store_id"}
