//! Cohere translator: being written (issue 3). Until then requests are refused clearly.

use super::{Attempt, ResponseTranslator, Translator, UpstreamRequest};
use crate::error::GatewayError;

pub struct Cohere;

impl Translator for Cohere {
    fn request(&self, attempt: &Attempt, _body: &[u8]) -> Result<UpstreamRequest, GatewayError> {
        Err(GatewayError::Misconfigured(format!(
            "provider type '{}' is not implemented yet",
            attempt.provider.kind.name()
        )))
    }

    fn response(&self, _: &Attempt) -> Option<Box<dyn ResponseTranslator>> {
        None
    }
}
