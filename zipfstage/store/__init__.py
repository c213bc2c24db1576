"""The one Zarr v3 store every stage shares: layout, writing with per-batch commits, reading."""

from zipfstage.store.attributes import RunAttributes
from zipfstage.store.layout import STORE_NAME, RunFolder, StorePlan, store_path
from zipfstage.store.reader import StoreReader, open_store
from zipfstage.store.writer import StoreWriter, TopkLayout, create_store

__all__ = [
    "STORE_NAME",
    "RunAttributes",
    "RunFolder",
    "StorePlan",
    "StoreReader",
    "StoreWriter",
    "TopkLayout",
    "create_store",
    "open_store",
    "store_path",
]
