use serde_json::json;

use super::*;
use crate::config_error::ConfigError;
use crate::provider::Secret;

fn q(body: &Value, max_turns: u32) -> Result<Query, Skip> {
    query(body.to_string().as_bytes(), "team:a", "chat", max_turns)
}

fn user(text: &str) -> Value {
    json!({"role": "user", "content": text})
}

#[test]
fn cosine_of_known_vectors() {
    // By hand: cos 0 = 1, cos 90° = 0, cos 45° = 1/sqrt(2), opposite = -1; length does not count.
    assert_eq!(cosine(&[1.0, 0.0], &[3.0, 0.0]), Some(1.0));
    assert_eq!(cosine(&[1.0, 0.0], &[0.0, 2.0]), Some(0.0));
    let c = cosine(&[1.0, 0.0], &[1.0, 1.0]).unwrap();
    assert!((c - std::f32::consts::FRAC_1_SQRT_2).abs() < 1e-6, "{c}");
    assert_eq!(cosine(&[1.0, 2.0], &[-1.0, -2.0]), Some(-1.0));
    // Another model's vector (another length), or a vector with no direction: no similarity.
    assert_eq!(cosine(&[1.0, 0.0], &[1.0, 0.0, 0.0]), None);
    assert_eq!(cosine(&[0.0, 0.0], &[1.0, 0.0]), None);
    assert_eq!(cosine(&[], &[]), None);
}

#[test]
fn the_embeddings_answer_is_read_and_scaled_to_length_one() {
    // The shape of OpenAI's answer (https://platform.openai.com/docs/api-reference/embeddings/create):
    // {"object": "list", "data": [{"object": "embedding", "embedding": [...], "index": 0}], ...}
    let answer = json!({"object": "list", "model": "text-embedding-3-small",
        "data": [{"object": "embedding", "index": 0, "embedding": [3.0, 4.0]}],
        "usage": {"prompt_tokens": 2, "total_tokens": 2}});
    let v = parse_embedding(answer.to_string().as_bytes(), 8).unwrap();
    assert_eq!(v, vec![0.6, 0.8]); // (3, 4) / 5
    let bad = [
        (json!({"data": []}), BadAnswer::Malformed),
        (json!({"data": [{"embedding": []}]}), BadAnswer::Malformed),
        (
            json!({"data": [{"embedding": ["x"]}]}),
            BadAnswer::Malformed,
        ),
        (json!({"error": {"message": "no"}}), BadAnswer::Malformed),
        (
            json!({"data": [{"embedding": [0.0, 0.0]}]}),
            BadAnswer::Degenerate,
        ),
        (
            json!({"data": [{"embedding": vec![1.0; 9]}]}),
            BadAnswer::TooManyDimensions,
        ),
    ];
    for (answer, why) in bad {
        assert_eq!(
            parse_embedding(answer.to_string().as_bytes(), 8),
            Err(why),
            "{answer}"
        );
    }
    assert_eq!(
        parse_embedding(b"{\"data\":[{\"embedding\":[1,", 8),
        Err(BadAnswer::Malformed)
    );
    assert_eq!(
        parse_embedding(br#"{"data":[{"embedding":[1e39]}]}"#, 8),
        Err(BadAnswer::Degenerate)
    );
}

#[test]
fn the_text_is_the_last_user_message_and_only_its_text_parts() {
    let body = json!({"model": "m", "messages": [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": [
            {"type": "text", "text": "What is"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
            {"type": "text", "text": "the capital of France?"}]}]});
    assert_eq!(q(&body, 1).unwrap().text, "What is\nthe capital of France?");
    let plain = json!({"model": "m", "messages": [user("Hello there")]});
    assert_eq!(q(&plain, 1).unwrap().text, "Hello there");
}

#[test]
fn requests_that_must_not_be_compared_are_skipped() {
    let tool_turn = json!({"model": "m", "messages": [
        user("weather in Paris?"),
        {"role": "assistant", "content": null, "tool_calls": [{"id": "c1", "type": "function",
            "function": {"name": "weather", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "sunny"}]});
    assert_eq!(q(&tool_turn, 8), Err(Skip::NotUser));
    let empty = json!({"model": "m", "messages": [user("   ")]});
    assert_eq!(q(&empty, 1), Err(Skip::Empty));
    let image_only = json!({"model": "m", "messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "https://x/y.png"}}]}]});
    assert_eq!(q(&image_only, 1), Err(Skip::Empty));
    let two_turns = json!({"model": "m", "messages": [
        user("hi"), {"role": "assistant", "content": "hello"}, user("how are you?")]});
    assert_eq!(q(&two_turns, 1), Err(Skip::TooManyTurns));
    assert!(q(&two_turns, 2).is_ok());
    let long = json!({"model": "m", "messages": [user(&"word ".repeat(MAX_TEXT_BYTES / 4))]});
    assert_eq!(q(&long, 1), Err(Skip::TooLong));
    assert_eq!(
        q(&json!({"model": "m", "messages": []}), 1),
        Err(Skip::Malformed)
    );
}

#[test]
fn the_context_hash_is_everything_but_the_last_user_message() {
    let base = json!({"model": "m", "temperature": 0.2, "messages": [
        {"role": "system", "content": "be brief"}, user("What is the capital of France?")]});
    let context = q(&base, 1).unwrap().context;
    // Another wording of the last message, or how the answer is delivered: the same context.
    let mut reworded = base.clone();
    reworded["messages"][1] = user("capital of france");
    reworded["stream"] = json!(true);
    reworded["user"] = json!("u-7");
    assert_eq!(q(&reworded, 1).unwrap().context, context);
    // Anything else: another context.
    for (field, value) in [
        ("model", json!("m2")),
        ("temperature", json!(0.3)),
        (
            "tools",
            json!([{"type": "function", "function": {"name": "f"}}]),
        ),
        ("tool_choice", json!("none")),
        ("response_format", json!({"type": "json_object"})),
        ("max_tokens", json!(9)),
    ] {
        let mut other = base.clone();
        other[field] = value;
        assert_ne!(q(&other, 1).unwrap().context, context, "{field}");
    }
    let mut system = base.clone();
    system["messages"][0]["content"] = json!("be verbose");
    assert_ne!(q(&system, 1).unwrap().context, context, "system prompt");
    // Namespace and endpoint count: another team never shares a context.
    let bytes = base.to_string();
    let other_team = query(bytes.as_bytes(), "team:b", "chat", 1).unwrap();
    assert_ne!(other_team.context, context);
    let pinned = query(bytes.as_bytes(), "team:a", "chat|pinned=x", 1).unwrap();
    assert_ne!(pinned.context, context);
    // And it is no exact key of the same request.
    assert_ne!(Some(context), exact_key("team:a", "chat", bytes.as_bytes()));
}

fn ctx_compile(
    v: Value,
    env_secret: Option<&str>,
    key_models: Option<Vec<&str>>,
) -> Result<Semantic, ConfigError> {
    let env = move |name: &str| {
        (name == "SEM_KEY")
            .then(|| env_secret.map(str::to_string))
            .flatten()
    };
    let models: Option<Vec<String>> = key_models.map(|m| m.into_iter().map(String::from).collect());
    let key_of = move |secret: &str| {
        (secret == "sk-sem").then(|| KeyInfo {
            id: "sem".to_string(),
            models: models.clone(),
        })
    };
    let ctx = Context {
        env: &env,
        keys_required: true,
        key_of_secret: &key_of,
    };
    compile(
        &v,
        "cache.models.chat.semantic",
        &|m| m == "chat" || m == "embed",
        &ctx,
    )
    .map(|(s, _)| s)
}

#[test]
fn the_section_compiles_with_conservative_defaults() {
    let s = ctx_compile(
        json!({"embeddings_model": "embed", "key_env": "SEM_KEY"}),
        Some("sk-sem"),
        Some(vec!["embed"]),
    )
    .unwrap();
    assert_eq!(s.threshold, 0.95);
    assert_eq!(s.max_turns, 1);
    assert_eq!(s.timeout_ms, 1000);
    assert_eq!(s.cluster, "gateway_loopback");
    assert_eq!(
        s.credential.as_ref().map(Secret::expose),
        Some("Bearer sk-sem")
    );
    assert!(
        !format!("{s:?}").contains("sk-sem"),
        "the secret is never printed"
    );
}

#[test]
fn refusals_name_the_field() {
    let ok = json!({"embeddings_model": "embed", "key_env": "SEM_KEY"});
    let with = |field: &str, value: Value| {
        let mut v = ok.clone();
        v[field] = value;
        v
    };
    let at = "cache.models.chat.semantic";
    let cases = [
        (with("embeddings_model", json!("nope")), "embeddings_model"),
        (with("threshold", json!(0)), "threshold"),
        (with("threshold", json!(1.01)), "threshold"),
        (with("max_turns", json!(0)), "max_turns"),
        (with("timeout_ms", json!(0)), "timeout_ms"),
        (with("cluster", json!("")), "cluster"),
        (with("key_env", json!("not a name")), "key_env"),
        (with("key_env", json!("UNSET_VAR")), "key_env"),
        (json!({"embeddings_model": "embed"}), "key_env"),
        (with("treshold", json!(0.9)), ""),
    ];
    for (doc, field) in cases {
        let e = ctx_compile(doc.clone(), Some("sk-sem"), Some(vec!["embed"])).unwrap_err();
        let expected = if field.is_empty() {
            at.to_string()
        } else {
            format!("{at}.{field}")
        };
        assert_eq!(e.field, expected, "{doc}: {e}");
    }
    // The secret must be a live key, limited to the embeddings model.
    let wrong_secret = ctx_compile(ok.clone(), Some("sk-other"), Some(vec!["embed"])).unwrap_err();
    assert_eq!(wrong_secret.field, format!("{at}.key_env"));
    let unlimited = ctx_compile(ok.clone(), Some("sk-sem"), None).unwrap_err();
    assert_eq!(unlimited.field, format!("{at}.key_env"));
    let elsewhere = ctx_compile(ok, Some("sk-sem"), Some(vec!["chat"])).unwrap_err();
    assert_eq!(elsewhere.field, format!("{at}.key_env"));
    let key = KeyInfo {
        id: "sem".to_string(),
        models: Some(vec!["embed".to_string(), "chat".to_string()]),
    };
    assert_eq!(
        check_key_models(at, &key, &["embed"]).unwrap_err().field,
        format!("{at}.key_env")
    );
    assert!(check_key_models(at, &key, &["embed", "chat"]).is_ok());
}

#[test]
fn the_index_bounds_are_checked() {
    let b = compile_bounds(None).unwrap();
    assert_eq!(
        (b.slots, b.bucket_entries, b.max_dimensions),
        (512, 4, 3072)
    );
    // 512 x (4 x (4 x 3072 + 50) + 38) bytes, by hand: 512 x 49_390 = 25_287_680.
    assert_eq!(b.max_index_bytes(), 25_287_680);
    for (doc, field) in [
        (json!({"slots": 0}), "cache.local.semantic.slots"),
        (
            json!({"bucket_entries": 0}),
            "cache.local.semantic.bucket_entries",
        ),
        (
            json!({"max_dimensions": 5000}),
            "cache.local.semantic.max_dimensions",
        ),
        (
            json!({"slots": 65536, "bucket_entries": 64, "max_dimensions": 4096}),
            "cache.local.semantic",
        ),
        (json!({"slot": 1}), "cache.local.semantic"),
    ] {
        assert_eq!(
            compile_bounds(Some(&doc)).unwrap_err().field,
            field,
            "{doc}"
        );
    }
}
