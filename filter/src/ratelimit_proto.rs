//! The former home of the rate limit service client, now [`crate::ratelimit`]; kept so that
//! `crate::ratelimit_proto::...` paths keep working.

pub use crate::ratelimit::*;
