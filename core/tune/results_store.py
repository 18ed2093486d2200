"""Sweep results on disk: saved with the pair they measured, reloadable, exportable.

Each pair's latest sweep is one JSON file under the app's data folder, named from
the pair's settings key; its verification cost curve (core/tune/cost_curve.py) is
kept beside it. Files are written to a temporary name and renamed into
place, so a sweep cancelled or a process killed mid-write never leaves a
half-written result.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import re
import tempfile
from pathlib import Path

from core.errors import ConfigError
from core.paths import data_dir
from core.tune.cost_curve import CostCurve
from core.tune.sweep import SweepResult

TUNE_FOLDER = "tune"
CSV_COLUMNS = (
    "source",
    "draft_max",
    "draft_min",
    "p_min",
    "decode_tokens_per_second",
    "speedup",
    "acceptance",
    "mean_accepted_length",
    "best",
)


def results_dir() -> Path:
    path = data_dir() / TUNE_FOLDER
    path.mkdir(parents=True, exist_ok=True)
    return path


def result_path(pair_key: str, folder: Path | None = None) -> Path:
    """Where the pair's sweep is kept: readable name plus a hash of the exact key."""
    readable = re.sub(r"[^A-Za-z0-9._-]+", "_", pair_key)[:80]
    digest = hashlib.sha256(pair_key.encode()).hexdigest()[:12]
    return (folder or results_dir()) / f"{readable}-{digest}.json"


def curve_path(pair_key: str, folder: Path | None = None) -> Path:
    """Where the pair's cost curve is kept, next to its sweep."""
    path = result_path(pair_key, folder)
    return path.with_name(f"{path.stem}.curve.json")


def write_atomically(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` in one rename (no half-written file, ever)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def save_result(result: SweepResult, pair_key: str, folder: Path | None = None) -> Path:
    path = result_path(pair_key, folder)
    write_atomically(path, json.dumps(result.to_dict(), indent=1))
    return path


def load_result(pair_key: str, folder: Path | None = None) -> SweepResult | None:
    """The pair's saved sweep, or None when it has none."""
    path = result_path(pair_key, folder)
    if not path.is_file():
        return None
    return read_result_file(path)


def save_curve(curve: CostCurve, pair_key: str, folder: Path | None = None) -> Path:
    path = curve_path(pair_key, folder)
    write_atomically(path, json.dumps(curve.to_dict(), indent=1))
    return path


def load_curve(pair_key: str, folder: Path | None = None) -> CostCurve | None:
    """The pair's measured cost curve, or None when it has none."""
    path = curve_path(pair_key, folder)
    if not path.is_file():
        return None
    try:
        return CostCurve.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"cannot read the cost curve {path}: {exc}") from exc


def read_result_file(path: Path) -> SweepResult:
    try:
        return SweepResult.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"cannot read sweep results {path}: {exc}") from exc


def to_csv(result: SweepResult) -> str:
    """One row per cell, the baseline first."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    base = result.baseline.decode_tokens_per_second
    writer.writerow(["none", 0, 0, 0.0, f"{base:.3f}", "1.000", "", "", ""])
    best = result.best()
    for cell in result.cells:
        row = result.cell_dict(cell)
        settings = row["settings"]
        writer.writerow(
            [
                settings["source"],
                settings["draft_max"],
                settings["draft_min"],
                settings["p_min"],
                f"{row['decode_tokens_per_second']:.3f}",
                f"{row['speedup']:.3f}",
                f"{row['acceptance']:.4f}",
                f"{row['mean_accepted_length']:.3f}",
                "yes" if cell is best else "",
            ]
        )
    return buffer.getvalue()


def export_csv(result: SweepResult, path: Path) -> None:
    try:
        write_atomically(path, to_csv(result))
    except OSError as exc:
        raise ConfigError(f"cannot write {path}: {exc.strerror}") from exc
