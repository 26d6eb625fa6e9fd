"""Service modules the fault scenarios run with `streamkit run`."""
