"""A small orders service: handlers, a producer script and an end-to-end demo."""
