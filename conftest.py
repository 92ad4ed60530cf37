"""Project-level pytest configuration.

`pytest` at the repository root evaluates the problems under `problems/`
(the `testpaths` of pyproject.toml) with the pytest-passk plugin, which is
installed as a `pytest11` entry point. The plugin's own tests live under
`tests/` and run with `pytest tests/`.
"""

collect_ignore = ["benchmarks", "tests"]
