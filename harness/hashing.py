"""The one stable hash: short sha256 digests of JSON-able objects, strings and files.

A leaf: imports nothing of ours, so every layer (plan's run ids, the data fingerprints, the token
cache's checksums) hashes the same way. Stable across machines, processes and Python versions.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

READ_CHUNK = 1 << 20  # bytes read per update when hashing a file


def text_hash(text: str, n: int = 64) -> str:
    """The first n hex digits of sha256(text)."""
    return hashlib.sha256(text.encode()).hexdigest()[:n]


def stable_hash(obj: object, n: int = 16) -> str:
    """Short sha256 of a JSON-able object (sorted keys, str() for anything else)."""
    return text_hash(json.dumps(obj, sort_keys=True, default=str), n)


def unit_hash(text: str) -> float:
    """A stable pseudo-random number in [0, 1) from text (for deterministic splits)."""
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big") / 2.0**64


def file_digest(path: Path) -> tuple[int, str]:
    """(size in bytes, sha256 hex) of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(READ_CHUNK):
            digest.update(chunk)
    return path.stat().st_size, digest.hexdigest()
