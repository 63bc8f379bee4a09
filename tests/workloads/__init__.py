"""Tests of the §7 workloads (a package, so module names cannot clash with other test dirs)."""
