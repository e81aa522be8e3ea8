//! The fake provider speaking the cohere wire format: being written.

use crate::fake_provider::{Received, Reply};

pub fn reply(req: &Received) -> Reply {
    Reply::json(
        501,
        &serde_json::json!({"message": format!("fake cohere: not implemented ({})", req.path)}),
    )
}
