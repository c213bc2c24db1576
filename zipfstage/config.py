"""Resolved settings for every stage: defaults < YAML file < ZIPFSTAGE_* environment < CLI options.

One settings tree serves all commands so `zipfstage config` can print exactly what a run would use.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
    YamlConfigSettingsSource,
)

from zipfstage.errors import ZipfstageError

DType = Literal["auto", "bfloat16", "float16", "float32"]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CollectSettings(_Section):
    """What `collect` runs: which model, which text, which points and metrics."""

    model: str = "demo"
    revision: str | None = None
    dtype: DType = "auto"
    device: str | None = None
    devices: list[str] | None = None
    shard_model: bool = False
    data: str = "pydoc"
    subset: str | None = None
    split: str = "train"
    text_field: str = "text"
    max_tokens: int = Field(default=20_000, gt=0)
    batch_size: int = Field(default=8, gt=0)
    seq_len: int = Field(default=256, gt=1)
    prepend_bos: bool = True
    points: list[str] = Field(default_factory=lambda: ["embed", "middle", "last"])
    #: sites read at every selected layer (attn_out, resid_mid, mlp_act, mlp_out, resid_post, all;
    #: attn, the per-head attention statistics, is named on its own)
    sites: list[str] = Field(default_factory=lambda: ["resid_post"])
    metrics: list[str] = Field(default_factory=lambda: ["all"])
    channels: int = Field(default=64, ge=0)
    #: the k largest |h_c| per token, with channels and signs (0 = off; clamped to the width)
    topk: int = Field(default=8, ge=0)
    #: hill_tail's k_h; None = max(10, d // 100)
    hill_k: int | None = Field(default=None, ge=1)
    seed: int = 0
    #: rewrite the finished store as a few shard files per array (`zipfstage.store.compact`)
    compact: bool = True
    #: refuse to start when the store's estimated peak size exceeds the free space of --out
    space_check: bool = True

    #: fields that do not change what ends up in the store, so they stay out of its hash
    RUNTIME_ONLY: ClassVar[frozenset[str]] = frozenset(
        {"device", "devices", "shard_model", "compact", "space_check"}
    )


class FitSettings(_Section):
    """How `fit` subsamples and fits every (point, metric)."""

    max_samples: int = Field(default=50_000, ge=0)
    bootstrap: int = Field(default=0, ge=0)
    points: list[str] = Field(default_factory=lambda: ["all"])
    metrics: list[str] = Field(default_factory=lambda: ["all"])
    workers: int = Field(default=0, ge=0)
    seed: int = 0
    min_tail: int = Field(default=50, ge=2)
    skip_positions: int = Field(default=1, ge=0)
    ks: Literal["powerlaw", "sup"] = "powerlaw"
    #: discrete power law: auto = when every value is an integer and the store's dtype is no
    #: bf16/fp16 grid (whose large values are integers too); yes; no
    discrete: Literal["auto", "yes", "no"] = "auto"


class PlotSettings(_Section):
    """Which figures `plot` draws and how."""

    format: Literal["png", "pdf", "svg", "both"] = "png"
    dpi: int = Field(default=150, gt=0)
    points: list[str] = Field(default_factory=lambda: ["all"])
    metrics: list[str] = Field(default_factory=lambda: ["all"])
    #: summary: overviews, depth overlays, outlier figures, the summary's CCDFs and `per_metric`
    #: more per metric; all: also a CCDF, rank-frequency plot and diagnostics per (point, metric)
    figures: Literal["summary", "all"] = "summary"
    per_metric: int = Field(default=6, ge=0)
    #: drawing processes; 0 = one per core
    workers: int = Field(default=0, ge=0)


class ReportSettings(_Section):
    """What `report` summarises."""

    top_tokens: int = Field(default=20, ge=0)
    tail_metric: str = "max_abs"
    #: drawing processes; 0 = one per core
    workers: int = Field(default=0, ge=0)
    #: report.html embeds every figure while their PNGs total at most this many MB; above it,
    #: it embeds the summary figures and links the rest from report_files/ beside it
    embed_mb: float = Field(default=20.0, ge=0)


class OutlierSettings(_Section):
    """Thresholds of the outlier-channel analysis `fit` runs on the top-k channel arrays."""

    dettmers_threshold: float = Field(default=6.0, gt=0)
    dettmers_layer_share: float = Field(default=0.25, ge=0, le=1)
    dettmers_position_share: float = Field(default=0.06, ge=0, le=1)
    sun_abs: float = Field(default=100.0, ge=0)
    sun_ratio: float = Field(default=1000.0, ge=0)
    top_channels: int = Field(default=20, ge=0)
    super_ratio: float = Field(default=10.0, gt=1)
    skip_positions: int = Field(default=0, ge=0)


class AblateSettings(_Section):
    """What `ablate` runs: interventions on the channels the outlier analysis names, with the
    run's own model, on text collect did not use."""

    #: None: the model the run collected (from the store); else where the same weights live
    model: str | None = None
    revision: str | None = None
    device: str | None = None
    devices: list[str] | None = None
    shard_model: bool = False
    #: None: the run's corpus, the sequences after the last collected batch
    data: str | None = None
    subset: str | None = None
    split: str | None = None
    text_field: str | None = None
    eval_tokens: int = Field(default=20_000, gt=0)
    #: sequences per forward pass; None: collect's batch size
    batch_size: int | None = Field(default=None, gt=0)
    #: auto (everything outliers.json names), massive, dettmers, super_weight, layer_<i>:<c>,...
    target: str = "auto"
    #: None: massive under zero, mean and typical; the others zeroed
    mode: Literal["zero", "mean", "typical", "clamp"] | None = None
    #: None: massive on the tokens that carry it, the others on all tokens
    tokens: Literal["first", "carriers", "all"] | None = None
    #: random-channel controls per intervention (seeds 0..n-1)
    controls: int = Field(default=5, ge=0)
    #: super-weight candidates run, the strongest first (largest mlp_out spike)
    max_super_weights: int = Field(default=3, ge=0)
    clamp_quantile: float = Field(default=0.99, gt=0, lt=1)
    #: collected tokens run again for the mean / typical / clamp values
    calibration_tokens: int = Field(default=8_192, gt=0)
    #: eval tokens on which the first massive layer is found when the run skipped layers
    scan_tokens: int = Field(default=4_096, gt=0)
    format: Literal["png", "pdf", "svg", "both"] = "png"
    dpi: int = Field(default=150, gt=0)


class Settings(BaseSettings):
    """All of zipfstage's settings. Build it with `Settings.load`, not directly."""

    model_config = SettingsConfigDict(
        env_prefix="ZIPFSTAGE_", env_nested_delimiter="__", extra="forbid", yaml_file=None
    )

    out: Path = Path("results")
    collect: CollectSettings = Field(default_factory=CollectSettings)
    fit: FitSettings = Field(default_factory=FitSettings)
    plot: PlotSettings = Field(default_factory=PlotSettings)
    report: ReportSettings = Field(default_factory=ReportSettings)
    outliers: OutlierSettings = Field(default_factory=OutlierSettings)
    ablate: AblateSettings = Field(default_factory=AblateSettings)

    _yaml_path: ClassVar[Path | None] = None

    @field_validator("out", mode="before")
    @classmethod
    def _local_out(cls, value: Any) -> Any:
        refuse_url(value, "--out")
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if cls._yaml_path is not None:
            sources.append(YamlConfigSettingsSource(settings_cls, yaml_file=cls._yaml_path))
        return tuple(sources)

    @classmethod
    def load(cls, config_path: Path | None = None, **overrides: Any) -> Settings:
        """Resolve settings; `overrides` are CLI values (None means "not given") by section."""
        if config_path is not None:
            _check_config_file(config_path)
        cleaned = _drop_none(overrides)
        yaml_class = type("_LoadedSettings", (cls,), {"_yaml_path": config_path})
        try:
            loaded = yaml_class(**cleaned)
        except ValidationError as exc:
            raise ZipfstageError(_one_line(exc)) from None
        except SettingsError as exc:  # e.g. ZIPFSTAGE_COLLECT='{bad' (a section must be JSON)
            field = re.search(r'field "(\w+)"', str(exc))
            name = f"{ENV_PREFIX}{field.group(1).upper()}" if field else "a ZIPFSTAGE_ variable"
            raise ZipfstageError(
                f"environment variable {name} is not a JSON object; give a whole section as "
                "JSON, or one key as ZIPFSTAGE_<SECTION>__<KEY>"
            ) from None
        return cls.model_validate(loaded.model_dump())

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False)


ENV_PREFIX = "ZIPFSTAGE_"
#: a URL scheme (s3://, gs://, https://; two letters at least, so C:/ stays a path). Path() folds
#: "s3://b/run" to "s3:/b/run", so one slash is enough to tell.
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]+:/")


def refuse_url(value: Any, what: str) -> None:
    """Run folders are local: a URL would silently become a folder named 's3:' here."""
    if isinstance(value, str | Path) and _URL.match(str(value)):
        raise ZipfstageError(
            f"{what} {value} is a URL; zipfstage reads and writes run folders on a local or "
            "mounted file system: copy the run here (e.g. aws s3 sync) and give its path"
        )


#: ZIPFSTAGE_* variables read outside the settings tree (cache folder, nox's torch and Python)
ENV_OUTSIDE_SETTINGS = frozenset({"ZIPFSTAGE_CACHE", "ZIPFSTAGE_TORCH", "ZIPFSTAGE_PYTHON"})


def unknown_environment_keys(environ: Mapping[str, str]) -> list[str]:
    """ZIPFSTAGE_* variables that set nothing (ZIPFSTAGE_COLLECT_MAX_TOKENS: one underscore)."""
    unknown = []
    for name in sorted(environ):
        if not name.upper().startswith(ENV_PREFIX) or name.upper() in ENV_OUTSIDE_SETTINGS:
            continue
        path = name[len(ENV_PREFIX) :].lower().split("__")
        if not _names_a_setting(Settings, path):
            unknown.append(name)
    return unknown


def _names_a_setting(model: type[BaseModel], path: list[str]) -> bool:
    field = model.model_fields.get(path[0])
    if field is None:
        return False
    if len(path) == 1:
        return True
    inner = field.annotation
    return (
        isinstance(inner, type)
        and issubclass(inner, BaseModel)
        and _names_a_setting(inner, path[1:])
    )


def _check_config_file(path: Path) -> None:
    """A config file must exist and hold a mapping of sections; say which in one line if not."""
    if path.is_dir():
        raise ZipfstageError(f"config file {path} is a directory; give a YAML file")
    if not path.is_file():
        raise ZipfstageError(f"config file not found: {path}")
    try:
        content = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ZipfstageError(f"config file {path} is not valid YAML: {_squash(exc)}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ZipfstageError(f"config file {path} cannot be read: {exc}") from None
    if content is not None and not isinstance(content, dict):
        raise ZipfstageError(
            f"config file {path} holds a {type(content).__name__}, not a mapping; its top level "
            "must be sections such as 'collect:' and 'fit:' (see configs/default.yaml)"
        )
    for section, value in (content or {}).items():
        _check_yaml_section(path, str(section), value)


def _check_yaml_section(path: Path, section: str, value: Any) -> None:
    """Type-check a YAML value on its own: merged under a command-line option that sets the same
    key, a wrong type would otherwise never be looked at (and would bite the next run)."""
    field = Settings.model_fields.get(section)
    if field is None:
        return  # an unknown section: the merged validation names it
    annotation = field.annotation
    try:
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            annotation.model_validate({} if value is None else value)
        elif annotation is not None:
            TypeAdapter(annotation).validate_python(value)
    except ValidationError as exc:
        raise ZipfstageError(f"config file {path}: {_one_line(exc, section)}") from None


def _squash(exc: BaseException) -> str:
    """An exception's message on one line."""
    return " ".join(str(exc).split())


def collect_identity(settings: CollectSettings) -> dict[str, Any]:
    """The collect settings that determine the store's contents (what a resume must match)."""
    dumped = settings.model_dump(mode="json")
    if dumped.get("sites") == ["resid_post"]:  # the default: stores made before sites still match
        del dumped["sites"]
    return {k: v for k, v in dumped.items() if k not in CollectSettings.RUNTIME_ONLY}


def stable_hash(payload: Any) -> str:
    """A short, order-independent hash of JSON-able data."""
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _drop_none(values: dict[str, Any]) -> dict[str, Any]:
    cleaned: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, dict):
            inner = _drop_none(value)
            if inner:
                cleaned[key] = inner
        elif value is not None:
            cleaned[key] = value
    return cleaned


def _one_line(exc: ValidationError, section: str | None = None) -> str:
    parts = []
    for error in exc.errors():
        where = ".".join(str(p) for p in ((section,) if section else ()) + tuple(error["loc"]))
        parts.append(f"{where}: {error['msg']}")
    return "invalid setting " + "; ".join(parts)
