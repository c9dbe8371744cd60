"""Test helpers shared by the collection's test suites."""
