"""An on-disk cache of generated samples, keyed by everything that determines them."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

__all__ = ["GenerationCache", "IdentityMemo", "cache_key"]


def cache_key(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def replace_json(path: Path, data: Any) -> None:
    """Write ``data`` to ``path`` atomically: a reader sees the old file or the new, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    with os.fdopen(handle, "w", encoding="utf-8") as out:
        json.dump(data, out, ensure_ascii=False)
    os.replace(temporary, path)


class GenerationCache:
    """One JSON file per (model, tokenizer, sampling parameters, prompt): its samples in index order.

    Files are replaced atomically, so an interrupted run leaves every batch it
    finished and nothing half-written.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def _path(self, key: str) -> Path:
        return self.directory / key[:2] / f"{key}.json"

    def load(self, key: str) -> list[dict[str, Any]]:
        try:
            samples = json.loads(self._path(key).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return []
        return samples if isinstance(samples, list) else []

    def store(self, key: str, samples: list[dict[str, Any]]) -> None:
        replace_json(self._path(key), samples)

    def extend(self, key: str, samples: list[dict[str, Any]]) -> None:
        self.store(key, self.load(key) + samples)


class IdentityMemo:
    """A model's identity (the hashes of its weights and tokenizer, its dtype) as last
    computed, by everything it was computed from: a local model's files (their names,
    sizes and modification times), the options, and the machine, which decides what
    ``auto`` means. A fully cached rerun of an unchanged model finds its samples with
    neither torch imported nor the weights read to hash them."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / "model-identities.json"

    def _read(self) -> dict[str, Any]:
        try:
            memo = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return memo if isinstance(memo, dict) else {}

    def recall(self, request: dict[str, Any]) -> dict[str, Any] | None:
        identity = self._read().get(cache_key(request))
        return identity if isinstance(identity, dict) else None

    def remember(self, request: dict[str, Any], identity: dict[str, Any]) -> None:
        replace_json(self.path, self._read() | {cache_key(request): identity})
