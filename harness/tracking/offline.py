"""Read an offline W&B run back: parse its `run-<id>.wandb` transaction log.

The log is a leveldb-style record log of `wandb_internal_pb2.Record` protobufs; wandb ships no Python
reader for it, so tests and offline tools use this one to check what was logged without a server.
"""

from __future__ import annotations

import json
import struct
import sys
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# The transaction log: a 7-byte file header (":W&B", magic 0xBEE1, version 0), then 32 KiB blocks of
# records `crc32 (IEEE, over type byte + data) | length uint16 | type uint8 | data`, little-endian, as in
# leveldb's log format. A record too big for its block is split FIRST/MIDDLE/LAST; a block tail shorter
# than a header is zero padding. Block boundaries count from the start of the file, header included.
_HEADER = struct.Struct("<4sHB")
_RECORD = struct.Struct("<IHB")
_BLOCK = 32768
_FULL, _FIRST, _MIDDLE, _LAST = 1, 2, 3, 4


def iter_records(path: Path) -> Iterator[Any]:
    """The `wandb_internal_pb2.Record`s of a `run-*.wandb` file, in order; a truncated tail ends it."""
    from wandb.proto import wandb_internal_pb2

    buf = Path(path).read_bytes()
    if len(buf) < _HEADER.size:
        return
    ident, magic, version = _HEADER.unpack_from(buf)
    if ident != b":W&B" or magic != 0xBEE1 or version != 0:
        raise ValueError(f"{path}: not a W&B transaction log (header {buf[:7]!r})")
    pos, parts = _HEADER.size, []
    while pos < len(buf):
        left = _BLOCK - pos % _BLOCK
        if left < _RECORD.size:
            pos += left
            continue
        if pos + _RECORD.size > len(buf):
            return
        crc, length, kind = _RECORD.unpack_from(buf, pos)
        if kind == 0 and length == 0:  # zero padding / preallocated tail
            pos += left
            continue
        data = buf[pos + _RECORD.size : pos + _RECORD.size + length]
        if len(data) < length:
            return  # the writer was killed mid-record
        if zlib.crc32(data, zlib.crc32(bytes([kind]))) != crc:
            raise ValueError(f"{path}: checksum mismatch at byte {pos}")
        pos += _RECORD.size + length
        if kind == _FULL:
            parts = [data]
        elif kind in (_FIRST, _MIDDLE):
            parts = [data] if kind == _FIRST else [*parts, data]
            continue
        elif kind == _LAST:
            parts.append(data)
        else:
            raise ValueError(f"{path}: unknown record type {kind} at byte {pos}")
        record = wandb_internal_pb2.Record()
        record.ParseFromString(b"".join(parts))
        parts = []
        yield record


def _item_path(item: Any) -> list[str]:
    return [item.key] if item.key else list(item.nested_key)


def _set_path(target: dict, path: list[str], value: Any) -> None:
    for key in path[:-1]:
        node = target.get(key)
        if not isinstance(node, dict):
            node = target[key] = {}
        target = node
    target[path[-1]] = value


def _del_path(target: dict, path: list[str]) -> None:
    for key in path[:-1]:
        target = target.get(key, {})
    if isinstance(target, dict):
        target.pop(path[-1], None)


@dataclass
class OfflineRun:
    """What one offline run directory says was logged; `exit_code` is None if the run never finished."""

    run_dir: Path
    run_id: str
    project: str
    group: str
    job_type: str
    name: str
    tags: list[str]
    config: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)
    # define_metric calls: metric name or glob -> {"step_metric": str, "summary": [aggregates]}
    metrics: dict[str, dict[str, Any]] = field(default_factory=dict)
    # logged artifacts: {"name", "type", "files" (paths inside it), "metadata"}
    artifacts: list[dict[str, Any]] = field(default_factory=list)
    exit_code: int | None = None


def read_offline_run(run_dir: Path) -> OfflineRun:
    """Replay the transaction log of `<dir>/wandb/offline-run-*/` (or of a `.wandb` file) into an OfflineRun.

    Config and summary are the state after the last update; history has one dict per logged step, keyed
    like `run.log` (plus W&B's `_step`, `_runtime`, `_timestamp`). W&B's own `_wandb` config is dropped.
    """
    run_dir = Path(run_dir)
    path = run_dir if run_dir.suffix == ".wandb" else next(iter(sorted(run_dir.glob("run-*.wandb"))), None)
    if path is None:
        raise FileNotFoundError(f"{run_dir}: no run-*.wandb transaction log")
    run = OfflineRun(run_dir=path.parent, run_id="", project="", group="", job_type="", name="", tags=[])

    def apply(target: dict, updates: Any, removes: Any = ()) -> None:
        for item in updates:
            _set_path(target, _item_path(item), json.loads(item.value_json))
        for item in removes:
            _del_path(target, _item_path(item))

    for record in iter_records(path):
        kind = record.WhichOneof("record_type")
        if kind == "run":
            r = record.run
            run.run_id, run.project, run.group, run.job_type = r.run_id, r.project, r.run_group, r.job_type
            run.name, run.tags = r.display_name, list(r.tags)
            apply(run.config, r.config.update, r.config.remove)
            apply(run.summary, r.summary.update, r.summary.remove)
        elif kind == "config":
            apply(run.config, record.config.update, record.config.remove)
        elif kind == "summary":
            apply(run.summary, record.summary.update, record.summary.remove)
        elif kind == "history":
            row: dict[str, Any] = {}
            apply(row, record.history.item)
            run.history.append(row)
        elif kind == "metric" and not record.metric.expanded_from_glob:
            m = record.metric
            aggregates = [f.name for f, on in m.summary.ListFields() if on is True]
            run.metrics[m.name or m.glob_name] = {"step_metric": m.step_metric, "summary": sorted(aggregates)}
        elif kind == "artifact":
            a = record.artifact
            run.artifacts.append(
                {
                    "name": a.name,
                    "type": a.type,
                    "files": sorted(entry.path for entry in a.manifest.contents),
                    "metadata": json.loads(a.metadata) if a.metadata else {},
                }
            )
        elif kind == "exit":
            run.exit_code = record.exit.exit_code
    run.config.pop("_wandb", None)
    return run


def offline_run_dirs(root: Path) -> list[Path]:
    """Every offline run directory under `root` (a `logger.dir`), in the order the runs started.

    Directory names only resolve the second a run started in, so the run record's start time orders
    the runs within one second.
    """

    def started(run_dir: Path) -> tuple[int, int, str]:
        for record in iter_records(next(run_dir.glob("run-*.wandb"))):
            if record.WhichOneof("record_type") == "run":
                return record.run.start_time.seconds, record.run.start_time.nanos, run_dir.name
        return sys.maxsize, 0, run_dir.name

    return sorted({p.parent for p in Path(root).rglob("offline-run-*/run-*.wandb")}, key=started)
