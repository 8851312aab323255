//! The library half of the `knhk-store` tool: what the command line, the
//! report and the tests share.
//!
//! - [`generate`]: realistic workflow specifications (YAWL Turtle), the
//!   data `knhk-store generate` writes.

pub mod generate;
