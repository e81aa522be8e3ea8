//! The exact key of a request: SHA-256 over its namespace, its endpoint and its body in a
//! canonical form (object keys sorted, no whitespace), without the fields that do not change
//! the answer (`stream`, `stream_options`, `user`). Everything else of the body counts, so a
//! change of model, messages, tools, `tool_choice`, `response_format` or any generation
//! parameter is another key. The namespace is part of the hashed text: a request of another
//! team or key computes another key and can never read an entry it did not write.

use serde_json::Value;

use super::config::Scope;
use crate::sha256;

/// Top-level request fields left out of the key: how the answer is delivered, and who asks.
const IGNORED: &[&str] = &["stream", "stream_options", "user"];

/// Version of the key derivation: changing the canonical form changes every key.
const KEY_VERSION: &str = "gw-cache-1";

/// The namespace a request's entries live in.
pub fn namespace(scope: Scope, key_id: Option<&str>, team: Option<&str>) -> String {
    match (scope, key_id, team) {
        (Scope::Global, _, _) => "global".into(),
        (Scope::Team, _, Some(team)) => format!("team:{team}"),
        (Scope::Team | Scope::Key, Some(id), _) => format!("key:{id}"),
        // An open gateway (no keys configured): every caller is the same caller.
        (Scope::Team | Scope::Key, None, _) => "open".into(),
    }
}

/// The exact key of a request body (already validated as JSON); `None` when it is not an
/// object.
pub fn exact_key(namespace: &str, endpoint: &str, body: &[u8]) -> Option<[u8; 32]> {
    let Ok(Value::Object(mut fields)) = serde_json::from_slice::<Value>(body) else {
        return None;
    };
    for name in IGNORED {
        fields.remove(*name);
    }
    let mut text = String::with_capacity(body.len().saturating_add(64));
    // Newlines cannot occur in a canonical JSON text or in our namespaces' separators, so the
    // parts cannot run into each other.
    text.push_str(KEY_VERSION);
    text.push('\n');
    text.push_str(namespace);
    text.push('\n');
    text.push_str(endpoint);
    text.push('\n');
    canonical(&Value::Object(fields), &mut text);
    Some(sha256::digest(text.as_bytes()))
}

/// Writes `v` as JSON with object keys in byte order and no whitespace. serde_json's map is a
/// `BTreeMap` (its `preserve_order` feature is off in this crate), so its own serialization is
/// already that form; `key_order_and_whitespace_do_not_matter` fails should that change.
pub fn canonical(v: &Value, out: &mut String) {
    out.push_str(&v.to_string());
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn key(ns: &str, body: &str) -> [u8; 32] {
        exact_key(ns, "chat", body.as_bytes()).unwrap()
    }

    #[test]
    fn key_order_and_whitespace_do_not_matter() {
        assert_eq!(
            key("open", r#"{"a":1,"b":{"y":2,"x":[1,{"q":1,"p":2}]}}"#),
            key(
                "open",
                r#"{ "b": {"x": [1, {"p":2, "q":1}], "y": 2}, "a": 1 }"#
            )
        );
    }

    #[test]
    fn delivery_and_caller_fields_do_not_count_but_everything_else_does() {
        let base = json!({"model": "m", "messages": [{"role": "user", "content": "hi"}], "temperature": 0.2});
        let k = key("open", &base.to_string());
        let mut same = base.clone();
        same["stream"] = json!(true);
        same["stream_options"] = json!({"include_usage": true});
        same["user"] = json!("u-1");
        assert_eq!(key("open", &same.to_string()), k);
        for (field, value) in [
            ("model", json!("m2")),
            ("temperature", json!(0.3)),
            (
                "tools",
                json!([{"type": "function", "function": {"name": "f"}}]),
            ),
            ("tool_choice", json!("none")),
            ("response_format", json!({"type": "json_object"})),
            ("max_tokens", json!(5)),
            ("seed", json!(1)),
            ("messages", json!([{"role": "user", "content": "hi!"}])),
        ] {
            let mut other = base.clone();
            other[field] = value;
            assert_ne!(key("open", &other.to_string()), k, "{field}");
        }
    }

    #[test]
    fn namespaces_and_endpoints_separate_entries() {
        let body = r#"{"model":"m","input":"x"}"#;
        assert_ne!(key("team:a", body), key("team:b", body));
        assert_ne!(
            exact_key("open", "chat", body.as_bytes()),
            exact_key("open", "embeddings", body.as_bytes())
        );
        assert_eq!(exact_key("open", "chat", b"[1]"), None);
    }

    #[test]
    fn namespace_follows_the_scope() {
        assert_eq!(namespace(Scope::Team, Some("k1"), Some("t")), "team:t");
        assert_eq!(namespace(Scope::Team, Some("k1"), None), "key:k1");
        assert_eq!(namespace(Scope::Key, Some("k1"), Some("t")), "key:k1");
        assert_eq!(namespace(Scope::Global, Some("k1"), Some("t")), "global");
        assert_eq!(namespace(Scope::Team, None, None), "open");
    }

    #[test]
    fn canonical_form_is_plain_sorted_json() {
        let mut out = String::new();
        canonical(&json!({"b": "é\n", "a": [null, true, 1.5]}), &mut out);
        assert_eq!(out, r#"{"a":[null,true,1.5],"b":"é\n"}"#);
    }
}
