"""Reports of a run: the terminal summary, the JSON document, the HTML page, junitxml properties."""
