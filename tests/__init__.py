"""The test suite, laid out like ``src/inpaint``; a package so that CLI runs can import ``tests.training.doubles``."""
