"""Background compaction (docs/design.md §4): fold deltas into shards, delete what nothing uses."""

from sqlkv.engine.compaction.coordinator import CompactionConfig, CompactionCoordinator
from sqlkv.engine.compaction.fold import (
    ApplyState,
    FoldPlan,
    PassOutcome,
    absorb,
    apply_pass,
    plan_pass,
)

__all__ = [
    "ApplyState",
    "CompactionConfig",
    "CompactionCoordinator",
    "FoldPlan",
    "PassOutcome",
    "absorb",
    "apply_pass",
    "plan_pass",
]
