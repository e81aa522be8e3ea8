//! The fake provider speaking the gemini wire format: being written.

use crate::fake_provider::{Received, Reply};

pub fn reply(req: &Received) -> Reply {
    Reply::json(
        501,
        &serde_json::json!({"message": format!("fake gemini: not implemented ({})", req.path)}),
    )
}
