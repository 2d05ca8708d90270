"""Tests of the engine: plain PyTorch, no database."""
