//! MIG planner (being written).
