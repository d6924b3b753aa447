"""Tests on a real single-node cluster (tests/harness/node.py)."""
