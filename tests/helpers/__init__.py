"""Helpers shared by several test modules (tests/ is on pytest's pythonpath).

Test modules import these, never each other, so each file runs on its own
(tests/code/test_suite_layout.py checks both).
"""
