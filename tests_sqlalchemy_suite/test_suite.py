"""SQLAlchemy's dialect compliance suite, unchanged: every test it ships runs here, and
only ``suite_requirements.Requirements`` (each exclusion with its reason) turns some off."""

from sqlalchemy.testing.suite import *  # noqa: F403
