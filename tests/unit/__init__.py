"""Unit tests: no broker."""
