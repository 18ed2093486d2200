"""Sweep results on disk: saved with the pair they measured, reloadable, exportable.

Each pair has a folder under the app's data folder, named from the pair's settings
key. Every saved sweep is one JSON file in it, named by the time it was saved, so
the folder is the pair's history: ``saved_sweeps`` lists it (newest first, with
each sweep's date, prompt set and grid), any entry reloads, old ones can be
deleted. The pair's verification cost curve (core/tune/cost_curve.py) is kept in
the same folder. Files are written to a temporary name and renamed into place, so
a sweep cancelled or a process killed mid-write never leaves a half-written result.
Before the history, a pair's one sweep was a single file next to where its folder
is now; it is listed with the others.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import re
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from core.engine import DraftSource
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


SWEEP_PREFIX = "sweep-"
CURVE_FILE = "cost-curve.json"


def pair_folder(pair_key: str, folder: Path | None = None) -> Path:
    """Where the pair's sweeps are kept: readable name plus a hash of the exact key."""
    readable = re.sub(r"[^A-Za-z0-9._-]+", "_", pair_key)[:80]
    digest = hashlib.sha256(pair_key.encode()).hexdigest()[:12]
    return (folder or results_dir()) / f"{readable}-{digest}"


def legacy_result_path(pair_key: str, folder: Path | None = None) -> Path:
    """The single file a pair's sweep was kept in before the history."""
    path = pair_folder(pair_key, folder)
    return path.with_name(f"{path.name}.json")


def curve_path(pair_key: str, folder: Path | None = None) -> Path:
    """Where the pair's cost curve is kept, with its sweeps."""
    return pair_folder(pair_key, folder) / CURVE_FILE


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
    """Add ``result`` to the pair's history; returns its file."""
    target = pair_folder(pair_key, folder)
    now = time.time_ns()
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now / 1e9))
    # The nanoseconds keep two saves in one second apart and the names in time order.
    path = target / f"{SWEEP_PREFIX}{stamp}-{now % 1_000_000_000:09d}.json"
    data = result.to_dict()
    data["saved_at"] = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(now / 1e9))
    write_atomically(path, json.dumps(data, indent=1))
    return path


@dataclass(frozen=True)
class SavedSweep:
    """One entry of a pair's history, as the Tune tab lists it."""

    path: Path
    saved_at: str
    prompt_set: str
    grid: str
    cells: int
    partial: bool
    # How far a partial sweep got ("2 of 4 prompts"); empty for a complete one.
    how_far: str
    best_speedup: float | None

    def describe(self) -> str:
        """E.g. "2026-11-27 18:40 · chat · model draft-max 2,4,8 x p-min 0,0.5 · 1.31x"."""
        parts = [self.saved_at[:16], self.prompt_set, self.grid]
        if self.partial:
            parts.append(f"partial ({self.how_far})")
        if self.best_speedup is not None and self.best_speedup > 1.0:
            parts.append(f"best {self.best_speedup:.2f}x")
        elif self.best_speedup is not None:  # no setting beat plain: no "best" to name
            parts.append(f"plain fastest (drafting at most {self.best_speedup:.2f}x)")
        return " · ".join(parts)


def grid_label(result: SweepResult) -> str:
    """The grid a sweep measured, from its cells: "model draft-max 2,4 x p-min 0,0.5"."""
    parts = []
    for source in (DraftSource.MODEL, DraftSource.NGRAM):
        fixed = [c.drafting for c in result.cells if c.drafting.source is source]
        lengths = sorted({d.n_max for d in fixed if not d.adaptive})
        text = source.value
        if lengths:
            text += " draft-max " + ",".join(str(n) for n in lengths)
            p_mins = sorted({d.p_min for d in fixed if not d.adaptive})
            if source is DraftSource.MODEL and p_mins != [0.0]:
                text += " x p-min " + ",".join(f"{p:g}" for p in p_mins)
        if any(d.adaptive for d in fixed):
            text += " + auto" if lengths else " auto"
        if fixed:
            parts.append(text)
    return "; ".join(parts) or "no cells"


def _history_files(pair_key: str, folder: Path | None) -> list[Path]:
    target = pair_folder(pair_key, folder)
    files = sorted(target.glob(f"{SWEEP_PREFIX}*.json")) if target.is_dir() else []
    legacy = legacy_result_path(pair_key, folder)
    return ([legacy] if legacy.is_file() else []) + files


def saved_sweeps(pair_key: str, folder: Path | None = None) -> list[SavedSweep]:
    """The pair's saved sweeps, newest first (an unreadable file is left out)."""
    entries = []
    for path in reversed(_history_files(pair_key, folder)):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            result = SweepResult.from_dict(data)
        except (OSError, json.JSONDecodeError, ConfigError):
            continue
        saved_at = str(
            data.get("saved_at")
            or time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(path.stat().st_mtime))
        )
        best = result.best()
        entries.append(
            SavedSweep(
                path=path,
                saved_at=saved_at,
                prompt_set=result.prompt_set,
                grid=grid_label(result),
                cells=len(result.cells),
                partial=result.partial,
                how_far=result.how_far() if result.partial else "",
                best_speedup=result.speedup(best) if best is not None else None,
            )
        )
    return entries


def load_result(pair_key: str, folder: Path | None = None) -> SweepResult | None:
    """The pair's newest saved sweep, or None when it has none."""
    files = _history_files(pair_key, folder)
    return read_result_file(files[-1]) if files else None


def delete_saved(entry: SavedSweep | Path) -> None:
    """Remove one sweep from its pair's history."""
    path = entry.path if isinstance(entry, SavedSweep) else entry
    try:
        path.unlink(missing_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot delete {path}: {exc.strerror}") from exc


def delete_older(pair_key: str, keep: int, folder: Path | None = None) -> int:
    """Delete all but the ``keep`` newest sweeps of the pair; returns how many went."""
    if keep < 0:
        raise ConfigError(f"keep must be >= 0, got {keep}")
    files = _history_files(pair_key, folder)
    old = files[: max(0, len(files) - keep)]
    for path in old:
        delete_saved(path)
    return len(old)


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
    # "best" marks what to use: the fastest cell if it beat plain, else plain itself.
    best = result.winner()
    writer.writerow(["none", 0, 0, 0.0, f"{base:.3f}", "1.000", "", "", "" if best else "yes"])
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
