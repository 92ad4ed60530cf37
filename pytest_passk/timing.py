"""Where a model run's time goes: start-up before the session (imports, plugins), sampling
(preparing: torch, transformers, the tokenizer, hashing the weights for the cache; loading
the weights; the first batch with a GPU's warm-up; the rest) and execution."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any

from .sources.generation import GenerationReport

__all__ = ["RunClock", "process_age", "timing_line"]


def process_age() -> float | None:
    """Seconds since this process started (Linux's /proc), None where that can't be read."""
    try:
        with open("/proc/self/stat", encoding="ascii") as stat:
            fields = stat.read().rpartition(")")[2].split()
        with open("/proc/uptime", encoding="ascii") as uptime:
            up = float(uptime.read().split()[0])
        return max(0.0, up - int(fields[19]) / os.sysconf("SC_CLK_TCK"))  # field 22, starttime, in clock ticks
    except (OSError, ValueError, IndexError):
        return None


@dataclass
class RunClock:
    """Moments of the run on the controller, by the monotonic clock."""

    startup: float | None = None  # the process's age when the session started
    session_start: float | None = None
    sampling_start: float | None = None
    sampling_end: float | None = None
    finish: float | None = None

    def start_session(self) -> None:
        self.startup, self.session_start = process_age(), time.monotonic()

    def breakdown(self, generation: GenerationReport | None) -> dict[str, Any]:
        """Seconds by stage; the generation's load and first batch broken out of sampling."""
        if self.session_start is None or self.finish is None:
            return {}
        parts: dict[str, Any] = {"startup": self.startup}
        after = self.session_start
        if self.sampling_start is not None and self.sampling_end is not None:
            parts["sampling"] = self.sampling_end - self.sampling_start
            if generation is not None:
                # before the first batch: importing torch and transformers, the tokenizer, hashing the weights
                parts["prepare"] = max(0.0, parts["sampling"] - generation.seconds)
                parts["load"] = generation.load_seconds
                parts["first_batch"] = generation.first_batch_seconds
                parts["generation"] = max(0.0, generation.seconds - generation.load_seconds - generation.first_batch_seconds)
            after = self.sampling_end
        parts["execution"] = self.finish - after
        parts["total"] = (self.startup or 0.0) + self.finish - self.session_start
        return {key: None if value is None else round(value, 3) for key, value in parts.items()}


def timing_line(parts: dict[str, Any]) -> str:
    """The breakdown as one line of the log."""
    def s(key: str) -> str:
        return f"{parts[key]:.1f} s"

    pieces = [f"start-up {s('startup')}"] if parts.get("startup") is not None else []
    if "sampling" in parts:
        inner = (f" (prepare {s('prepare')}, load {s('load')}, first batch {s('first_batch')}, the rest {s('generation')})"
                 if "load" in parts else "")
        pieces.append(f"sampling {s('sampling')}{inner}")
    pieces.append(f"execution {s('execution')}")
    return f"passk: time: {', '.join(pieces)}; {s('total')} in all"
