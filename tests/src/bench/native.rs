//! `make bench-native`'s glue to the filter crate: the gateway's per-request pure work for the
//! bench's 1.5 KB chat request, stage by stage, for each provider wire format. Every call into
//! `ai_gateway` is in this file, so an API change is adapted here alone; the timing and the
//! table are in `src/bin/bench-native.rs`.
//!
//! The provider answers come from the test fakes (`crate::fake`, written from each provider's
//! published API reference and cited there), given the request the gateway translated, so every
//! format answers the same text and every fixture is checked end to end before it is timed.

use std::time::{SystemTime, UNIX_EPOCH};

use ai_gateway::config::Config;
use ai_gateway::gateway::{self, Prepared};
use ai_gateway::provider::{Attempt, Operation, ResponseTranslator, UpstreamRequest};
use ai_gateway::response::StreamObserver;
use ai_gateway::routing::{Inputs, Observed};
use ai_gateway::usage::Usage;
use serde_json::{json, Value};

use super::workload;
use crate::fake_provider::{demo_answer, stream_events, Received, Reply};
use crate::http::Head;

/// A wire format: the client model that the native config routes to a provider of it.
#[derive(Debug, Clone, Copy)]
pub struct Format {
    pub name: &'static str,
    /// The client's model name.
    model: &'static str,
    /// The provider id in [`plugin_config`].
    provider: &'static str,
}

pub const FORMATS: [Format; 5] = [
    Format {
        name: "OpenAI-compatible",
        model: "gpt-4o-mini",
        provider: "openai",
    },
    Format {
        name: "Anthropic",
        model: "claude-haiku-4-5",
        provider: "anthropic",
    },
    Format {
        name: "Gemini",
        model: "gemini-2.5-flash",
        provider: "gemini",
    },
    Format {
        name: "Bedrock",
        model: "bedrock-claude-haiku",
        provider: "bedrock",
    },
    Format {
        name: "Cohere",
        model: "command-a",
        provider: "cohere",
    },
];

/// One piece of the per-request work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Prepare,
    Route,
    TranslateRequest,
    TranslateJson,
    TranslateStream,
    UsageJson,
    UsageStream,
}

impl Stage {
    pub const ALL: [Stage; 7] = [
        Stage::Prepare,
        Stage::Route,
        Stage::TranslateRequest,
        Stage::TranslateJson,
        Stage::TranslateStream,
        Stage::UsageJson,
        Stage::UsageStream,
    ];

    pub fn title(self) -> &'static str {
        match self {
            Stage::Prepare => "parse + validate the request (`gateway::prepare`)",
            Stage::Route => {
                "route (`gateway::plan`, with the clone of the prepared request it consumes)"
            }
            Stage::TranslateRequest => {
                "translate the request for the provider (`Translator::request`)"
            }
            Stage::TranslateJson => "translate the JSON answer (`ResponseTranslator`)",
            Stage::TranslateStream => {
                "translate the SSE answer, chunk by chunk (`ResponseTranslator`)"
            }
            Stage::UsageJson => "read usage from the JSON answer (`Usage::from_openai_body`)",
            Stage::UsageStream => {
                "read usage from the stream, strip its usage chunk (`StreamObserver`)"
            }
        }
    }

    /// Part of a non-streamed request's work.
    pub fn json_path(self) -> bool {
        !matches!(self, Stage::TranslateStream | Stage::UsageStream)
    }

    /// Part of a streamed request's work.
    pub fn stream_path(self) -> bool {
        !matches!(self, Stage::TranslateJson | Stage::UsageJson)
    }
}

/// The plugin configuration: one provider of each wire format, keyed, as shipped in
/// envoy/envoy.yaml.
fn plugin_config() -> Value {
    json!({
        "providers": {
            "openai": {"type": "openai", "api_key_env": "OPENAI_API_KEY"},
            "anthropic": {"type": "anthropic", "api_key_env": "ANTHROPIC_API_KEY"},
            "gemini": {"type": "gemini", "api_key_env": "GEMINI_API_KEY"},
            "bedrock": {"type": "bedrock", "region": "us-east-1"},
            "cohere": {"type": "cohere", "api_key_env": "COHERE_API_KEY"}
        },
        "models": {
            "gpt-4o-mini": {"provider": "openai"},
            "claude-haiku-4-5": {"provider": "anthropic"},
            "gemini-2.5-flash": {"provider": "gemini"},
            "bedrock-claude-haiku": {"provider": "bedrock", "model": "us.anthropic.claude-3-5-haiku-20241022-v1:0"},
            "command-a": {"provider": "cohere", "model": "command-a-03-2025"}
        }
    })
}

fn env(name: &str) -> Option<String> {
    use crate::fake::bedrock::{TEST_ACCESS_KEY_ID, TEST_SECRET_ACCESS_KEY};
    let value = match name {
        "AWS_ACCESS_KEY_ID" => TEST_ACCESS_KEY_ID,
        "AWS_SECRET_ACCESS_KEY" => TEST_SECRET_ACCESS_KEY,
        "AWS_SESSION_TOKEN" => return None,
        other => return Some(format!("sk-native-bench-{}", other.to_lowercase())),
    };
    Some(value.to_string())
}

/// A provider's answer: its content type and the body as the network delivers it (one piece
/// for JSON; one piece per event or frame for a stream).
#[derive(Debug, Clone, Default)]
pub struct Answer {
    pub content_type: String,
    pub pieces: Vec<Vec<u8>>,
}

impl Answer {
    pub fn bytes(&self) -> usize {
        self.pieces.iter().map(Vec::len).sum()
    }
}

/// Everything one format's stages need, built and checked once.
pub struct Fixture {
    pub format: Format,
    config: Config,
    /// The client's request, non-streamed and streamed.
    pub body: Vec<u8>,
    stream_body: Vec<u8>,
    prepared: Prepared,
    stream_prepared: Prepared,
    provider_index: usize,
    upstream_model: String,
    now_unix: u64,
    /// The provider's answers, in its wire format.
    pub provider_json: Answer,
    pub provider_sse: Answer,
    /// The same answers in the OpenAI format (translated, or as they came for OpenAI).
    openai_json: Vec<u8>,
    openai_sse: Vec<Vec<u8>>,
}

impl Fixture {
    /// Runs the whole pipeline once for this format and checks every step's result.
    pub fn new(format: Format) -> Result<Self, String> {
        let config = Config::from_json(plugin_config().to_string().as_bytes(), &env)
            .map_err(|e| format!("plugin configuration: {e}"))?;
        let body = workload::chat_request(format.model, false);
        let stream_body = workload::chat_request(format.model, true);
        let prepare = |body: &[u8]| {
            gateway::prepare(&config, Operation::Chat, body).map_err(|e| format!("prepare: {e}"))
        };
        let (prepared, stream_prepared) = (prepare(&body)?, prepare(&stream_body)?);
        let model = config
            .models
            .get(format.model)
            .ok_or_else(|| format!("model {} is not configured", format.model))?;
        let target = model
            .first_target()
            .ok_or_else(|| format!("model {} has no target", format.model))?;
        let now_unix = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let mut fixture = Self {
            format,
            provider_index: target.provider,
            upstream_model: target.upstream_model.clone(),
            config: config.clone(),
            body,
            stream_body,
            prepared,
            stream_prepared,
            now_unix,
            provider_json: Answer::default(),
            provider_sse: Answer::default(),
            openai_json: Vec::new(),
            openai_sse: Vec::new(),
        };
        let plan = gateway::plan(&config, fixture.prepared.clone(), &fixture.inputs())
            .map_err(|e| format!("plan: {e}"))?;
        if plan.provider != format.provider {
            return Err(format!(
                "routed to {}, expected {}",
                plan.provider, format.provider
            ));
        }
        for stream in [false, true] {
            let request = fixture
                .translate_request(stream)
                .map_err(|e| format!("translate the request: {e}"))?;
            let answer = provider_answer(format, &request, &fixture.request_body(stream))?;
            let openai = match fixture.response_translator(stream) {
                Some(mut t) => translate(t.as_mut(), &answer),
                None => answer.pieces.clone(),
            };
            if stream {
                (fixture.provider_sse, fixture.openai_sse) = (answer, openai);
            } else {
                fixture.provider_json = answer;
                fixture.openai_json = openai.concat();
            }
        }
        fixture.check()?;
        Ok(fixture)
    }

    /// The translated answers are what an OpenAI client expects, with usage.
    fn check(&self) -> Result<(), String> {
        let v: Value = serde_json::from_slice(&self.openai_json).map_err(|e| {
            format!(
                "translated JSON answer is not JSON ({e}): {}",
                String::from_utf8_lossy(&self.openai_json)
            )
        })?;
        if v["choices"][0]["message"]["content"]
            .as_str()
            .is_none_or(str::is_empty)
        {
            return Err(format!("translated JSON answer has no content: {v}"));
        }
        if Usage::from_openai_body(&self.openai_json).is_none_or(|u| u.completion == 0) {
            return Err(format!("no usage read from the JSON answer: {v}"));
        }
        let observer = self.observe_stream();
        if !observer.saw_done || observer.usage.is_none_or(|u| u.completion == 0) {
            return Err(format!(
                "translated stream lacks [DONE] or usage: {}",
                String::from_utf8_lossy(&self.openai_sse.concat())
            ));
        }
        Ok(())
    }

    fn request_body(&self, stream: bool) -> Vec<u8> {
        if stream {
            self.stream_body.clone()
        } else {
            self.body.clone()
        }
    }

    fn inputs(&self) -> Inputs<'_> {
        Inputs {
            providers: &self.config.providers,
            facts: &self.prepared.facts,
            observed: &|_| Observed::default(),
            random: 0x5eed,
            now_unix: self.now_unix,
            pinned: None,
            classified: None,
        }
    }

    fn attempt(&self, stream: bool) -> Option<Attempt<'_>> {
        let prepared = if stream {
            &self.stream_prepared
        } else {
            &self.prepared
        };
        Some(Attempt {
            provider: self.config.providers.get(self.provider_index)?,
            operation: Operation::Chat,
            client_model: &prepared.model,
            upstream_model: &self.upstream_model,
            stream,
            client_asked_usage: prepared.client_asked_usage,
            embeddings_base64: false,
            now_unix: self.now_unix,
            key_index: 0,
        })
    }

    fn translate_request(&self, stream: bool) -> Result<UpstreamRequest, String> {
        let attempt = self.attempt(stream).ok_or("no provider")?;
        let body = if stream {
            &self.stream_body
        } else {
            &self.body
        };
        attempt
            .provider
            .kind
            .translator()
            .request(&attempt, body)
            .map_err(|e| e.to_string())
    }

    fn response_translator(&self, stream: bool) -> Option<Box<dyn ResponseTranslator>> {
        let attempt = self.attempt(stream)?;
        attempt.provider.kind.translator().response(&attempt)
    }

    /// Whether the stage has work for this format (an OpenAI-compatible answer is not
    /// translated).
    pub fn applies(&self, stage: Stage) -> bool {
        match stage {
            Stage::TranslateJson | Stage::TranslateStream => {
                self.response_translator(false).is_some()
            }
            _ => true,
        }
    }

    fn observe_stream(&self) -> StreamObserver {
        // The client did not ask for usage: the gateway asked for it and strips its chunk.
        let mut observer = StreamObserver::new(true);
        let last = self.openai_sse.len().saturating_sub(1);
        for (i, chunk) in self.openai_sse.iter().enumerate() {
            observer.on_chunk(chunk, i == last);
        }
        observer
    }

    /// Does the stage's work once; returns a size of its result, for the caller to keep the
    /// work from being optimised away.
    pub fn run(&self, stage: Stage) -> usize {
        match stage {
            Stage::Prepare => gateway::prepare(&self.config, Operation::Chat, &self.body)
                .map_or(0, |p| p.model.len()),
            Stage::Route => gateway::plan(&self.config, self.prepared.clone(), &self.inputs())
                .map_or(0, |p| p.chain.len()),
            Stage::TranslateRequest => self
                .translate_request(false)
                .map_or(0, |r| r.body.map_or(r.path.len(), |b| b.len())),
            Stage::TranslateJson | Stage::TranslateStream => {
                let stream = stage == Stage::TranslateStream;
                let answer = if stream {
                    &self.provider_sse
                } else {
                    &self.provider_json
                };
                self.response_translator(stream)
                    .map_or(0, |mut t| translate(t.as_mut(), answer).len())
            }
            Stage::UsageJson => {
                Usage::from_openai_body(&self.openai_json).map_or(0, |u| u.total as usize)
            }
            Stage::UsageStream => self.observe_stream().usage.map_or(0, |u| u.total as usize),
        }
    }
}

/// Feeds an answer through a response translator as the upstream filter does: its status and
/// content type, then each piece (the whole body at once when it asks to buffer).
fn translate(t: &mut dyn ResponseTranslator, answer: &Answer) -> Vec<Vec<u8>> {
    let shape = t.start(200, Some(&answer.content_type));
    if shape.buffer_whole {
        return vec![t.body(&answer.pieces.concat(), true)];
    }
    let last = answer.pieces.len().saturating_sub(1);
    answer
        .pieces
        .iter()
        .enumerate()
        .map(|(i, piece)| t.body(piece, i == last))
        .collect()
}

/// What the provider answers the translated request: the test fake of its format. The OpenAI
/// answer is built here from the fake's demo answer, in the shape of the chat completion object
/// (https://platform.openai.com/docs/api-reference/chat/object) and, streamed, the fake's
/// chunk stream (https://platform.openai.com/docs/api-reference/chat-streaming).
fn provider_answer(
    format: Format,
    request: &UpstreamRequest,
    client_body: &[u8],
) -> Result<Answer, String> {
    let body = request.body.clone().unwrap_or_else(|| client_body.to_vec());
    let mut headers: Vec<(String, String)> = request
        .headers
        .iter()
        .map(|(k, v)| {
            let name = if *k == ":authority" { "host" } else { k };
            (name.to_string(), v.clone())
        })
        .collect();
    headers.push(("content-type".into(), "application/json".into()));
    let received = Received {
        method: "POST".into(),
        path: request.path.clone(),
        head: Head {
            first_line: format!("POST {} HTTP/1.1", request.path),
            headers,
        },
        body,
    };
    let reply = match format.provider {
        "anthropic" => crate::fake::anthropic::reply(&received),
        "gemini" => crate::fake::gemini::reply(&received),
        "bedrock" => crate::fake::bedrock::reply(&received),
        "cohere" => crate::fake::cohere::reply(&received),
        _ => openai_reply(&received.json()),
    };
    let answer = Answer {
        content_type: reply
            .headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("content-type"))
            .map(|(_, v)| v.clone())
            .unwrap_or_default(),
        pieces: reply.pieces.iter().map(|(_, p)| p.clone()).collect(),
    };
    if reply.status != 200 {
        return Err(format!(
            "the fake {} answered {}: {}",
            format.name,
            reply.status,
            String::from_utf8_lossy(&answer.pieces.concat())
        ));
    }
    Ok(answer)
}

fn openai_reply(request: &Value) -> Reply {
    let model = request["model"].as_str().unwrap_or_default();
    let (text, prompt, completion) = demo_answer(request);
    let usage = json!({"prompt_tokens": prompt, "completion_tokens": completion,
        "total_tokens": prompt + completion});
    if request["stream"] == true {
        let include_usage = request["stream_options"]["include_usage"] == true;
        return Reply::sse(
            &stream_events(model, &text, include_usage.then_some(&usage)),
            std::time::Duration::ZERO,
        );
    }
    Reply::json(
        200,
        &json!({"id": "chatcmpl-native", "object": "chat.completion", "created": 1_700_000_000,
            "model": model, "choices": [{"index": 0, "finish_reason": "stop",
                "message": {"role": "assistant", "content": text}}],
            "usage": usage}),
    )
}
