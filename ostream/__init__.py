"""ostream: stream answers from an Ollama server to stdout, Unix-pipe style."""

__version__ = "0.1.0"
