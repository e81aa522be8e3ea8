//! The fake provider speaking the anthropic wire format: being written.

use crate::fake_provider::{Received, Reply};

pub fn reply(req: &Received) -> Reply {
    Reply::json(
        501,
        &serde_json::json!({"message": format!("fake anthropic: not implemented ({})", req.path)}),
    )
}
