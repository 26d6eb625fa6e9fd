"""Service modules run by `streamkit run` in integration tests."""
