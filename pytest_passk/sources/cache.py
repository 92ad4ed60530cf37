"""An on-disk cache of generated samples, keyed by everything that determines them."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

__all__ = ["GenerationCache", "cache_key"]


def cache_key(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


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
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            json.dump(samples, out, ensure_ascii=False)
        os.replace(temporary, path)

    def extend(self, key: str, samples: list[dict[str, Any]]) -> None:
        self.store(key, self.load(key) + samples)
