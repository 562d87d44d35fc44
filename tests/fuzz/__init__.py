"""Hostile-input fuzzing: parsers fed arbitrary and mutated inputs (see ``support.py``)."""
