//! The design document's `initialization` paths. Each item is one of
//! [`crate::registry`], [`crate::executor`] or [`crate::pool`] (or
//! knhk-core's pattern catalogue) under the design's name.

pub use crate::executor::{ExecutionError, PatternExecutor, TaskContext};
pub use crate::pool::{PooledArena, ResourceConfig, ResourcePool};
pub use crate::registry::{
    GlobalResourceRegistry, PatternMap, PatternRegistry, RefusedExecutor, GLOBAL_PATTERN_REGISTRY,
    GLOBAL_RESOURCE_REGISTRY,
};
pub use knhk_core::patterns::{PatternCategory, PatternInfo, UnknownPattern, CATALOGUE};
