//! Names of the gateway's Envoy stats. Labels are encoded in the name as `.<label>=<value>;`
//! and lifted into real Prometheus labels by the `stats_tags` of envoy/envoy.yaml (one regex per
//! label). Label values come from the config (model and provider names) or small fixed sets,
//! never from free text, so the number of series stays bounded.

pub const REQUESTS: &str = "gw_requests";
pub const TOKENS: &str = "gw_tokens";
pub const REQUEST_DURATION: &str = "gw_request_duration_ms";
pub const TIME_TO_FIRST_BYTE: &str = "gw_time_to_first_byte_ms";

/// Label value safe inside a stat name: the separators `;` `=` and anything unprintable
/// become `_`.
pub fn label_value(v: &str) -> String {
    if v.is_empty() {
        return "none".into();
    }
    v.chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != ';' && c != '=' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// `gw_requests.model=<m>;provider=<p>;status=<2xx>;`
pub fn requests(model: &str, provider: &str, status: u32) -> String {
    format!(
        "{REQUESTS}.model={};provider={};status={}xx;",
        label_value(model),
        label_value(provider),
        (status / 100).min(9)
    )
}

/// `gw_tokens.model=<m>;provider=<p>;type=<input|output>;`
pub fn tokens(model: &str, provider: &str, token_type: &str) -> String {
    format!(
        "{TOKENS}.model={};provider={};type={token_type};",
        label_value(model),
        label_value(provider)
    )
}

/// A histogram by model and provider.
pub fn by_model(name: &str, model: &str, provider: &str) -> String {
    format!(
        "{name}.model={};provider={};",
        label_value(model),
        label_value(provider)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_carry_labels_in_a_parsable_form() {
        assert_eq!(
            requests("gpt-4.1", "openai", 200),
            "gw_requests.model=gpt-4.1;provider=openai;status=2xx;"
        );
        assert_eq!(
            tokens("meta/llama 3", "groq", "input"),
            "gw_tokens.model=meta/llama_3;provider=groq;type=input;"
        );
        assert_eq!(label_value("a;b=c"), "a_b_c");
        assert_eq!(label_value(""), "none");
    }
}
