"""Tests of the v1 format (a package, so module names cannot clash with other test dirs)."""
