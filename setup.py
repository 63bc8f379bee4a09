"""The optional C part of ``sqlkv.dbapi2`` (``_speedups``: its hot paths). Everything else
is in pyproject.toml. The extension is optional: without a compiler the build goes on and
``sqlkv.dbapi2`` runs its pure-Python code (docs/python-dbapi.md §8)."""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "sqlkv.dbapi2._speedups",
            ["src/sqlkv/dbapi2/_speedups.c"],
            optional=True,
        )
    ]
)
