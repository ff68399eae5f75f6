"""Coverage-guided fuzzing (atheris) of the media node's byte-level parsers; see README.md."""
