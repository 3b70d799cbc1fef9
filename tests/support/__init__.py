"""Helpers shared by the test suites (not fixtures: plain functions and constants)."""
