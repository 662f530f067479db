"""The ``custody`` command line: parse, build settings, call one custody operation, render."""
