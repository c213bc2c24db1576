"""Issue 18: plain readers. xarray opens every group of a store (each array names its dimensions)
and reads the values zipfstage's reader gives; in a store collect has not finished, README's
one-line recipe masks the uncommitted rows exactly as zipfstage does."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import xarray as xr
import zarr
from typer.testing import CliRunner

from tests.synthetic_store import make_synthetic_store
from zipfstage.cli import app
from zipfstage.records import CHANNEL_WISE
from zipfstage.store import open_store
from zipfstage.store.fits import read_fit_curves
from zipfstage.store.layout import ROOT_ATTR, UNCOMMITTED_ATTR


def open_tree(out: Path) -> xr.DataTree:
    return xr.open_datatree(out / "store.zarr", engine="zarr", consolidated=False, zarr_format=3)


@pytest.fixture(scope="module")
def fitted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("xarray")
    make_synthetic_store(out, metrics=("rms", "max_abs", CHANNEL_WISE), n_batches=3)
    fit = ["fit", "--out", str(out), "--bootstrap", "0", "--metrics", "rms", "--workers", "1"]
    assert CliRunner().invoke(app, fit).exit_code == 0
    return out


def test_xarray_opens_every_group_with_the_values_zipfstage_reads(fitted: Path) -> None:
    tree = open_tree(fitted)
    store = open_store(fitted)
    groups = {node.path for node in tree.subtree}
    zarr_groups = {"/"} | {
        f"/{name}" for name, _ in zarr.open_group(fitted / "store.zarr").groups()
    }
    assert zarr_groups <= groups
    np.testing.assert_array_equal(tree["tokens"]["ids"].values, store.token_ids())
    np.testing.assert_array_equal(tree["tokens"]["position"].values, store.positions())
    assert tree["progress"].dims == ("batch",)
    np.testing.assert_array_equal(tree["progress"].values, store.committed_counts)
    for point in store.points:
        for metric in store.metrics:
            variable = tree[f"metrics/{point}"][metric]
            assert variable.dims[0] == "token"
            np.testing.assert_array_equal(variable.values, store.metric(point, metric))
    for point in store.points:
        curves = read_fit_curves(fitted, point, "rms")
        fit_node = tree[f"fits/{point}/rms"]
        (curve_group,) = fit_node.children.values()
        for key, values in curves.items():
            np.testing.assert_array_equal(curve_group[key].values, values)


def test_the_readme_recipe_masks_uncommitted_rows_as_zipfstage_does(tmp_path: Path) -> None:
    make_synthetic_store(tmp_path, metrics=("rms",), n_batches=4, complete=False)
    store = open_store(tmp_path)
    assert not store.complete and 0 < store.n_tokens < 4 * store.plan.rows_per_batch
    root = zarr.open_group(tmp_path / "store.zarr", mode="r")
    assert "progress" in str(root.attrs[UNCOMMITTED_ATTR])
    # README: rows_per_batch from the root attribute, then one line of numpy
    plan = root.attrs[ROOT_ATTR]["plan"]  # type: ignore[index,call-overload]
    rows_per_batch = plan["batch_size"] * plan["seq_len"]
    progress = root["progress"][:]  # type: ignore[index]
    mask = (np.arange(rows_per_batch) < progress[:, None]).ravel()  # type: ignore[index]
    values = open_tree(tmp_path)["metrics/embed"]["rms"].values
    np.testing.assert_array_equal(values[mask], store.metric("embed", "rms"))
