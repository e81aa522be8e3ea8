//! What k8s/ ships, run for real: the generated files are what envoy/envoy.yaml gives; the
//! Kubernetes bootstrap (k8s/base/envoy/envoy.yaml, the file `make kubernetes` proves is inside
//! every built ConfigMap) serves through the real Envoy with only Kubernetes-only addresses
//! swapped; its probes listener and the Deployment's preStop hook work; and the Istio
//! EnvoyFilter's routes and upstream filter chain (the provider filter through ECDS) work with
//! the Istio plugin configuration.

use std::fs;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use gateway_tests::envoy::{repo_root, wasm_path, Envoy, Options};
use gateway_tests::fake_provider::{stream_events, FakeProvider, Reply};
use gateway_tests::{http, k8s};
use serde_json::{json, Value};

fn load_yaml(path: &Path) -> Value {
    let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let docs: Vec<Value> = format!("\n{text}")
        .split("\n---\n")
        .map(|d| {
            serde_yaml::from_str::<Value>(d).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        })
        .filter(|d| !d.is_null())
        .collect();
    if docs.len() == 1 {
        docs.into_iter().next().unwrap()
    } else {
        Value::Array(docs)
    }
}

fn scratch_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ai-gateway-k8s-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

/// The Kubernetes bootstrap with what only exists in a cluster made local: listeners on
/// loopback, the rate limit service and the admin API behind the probes listener on local ports.
fn local_bootstrap(admin_forward_port: u16) -> Value {
    let mut config = load_yaml(&repo_root().join("k8s/base/envoy/envoy.yaml"));
    for l in config["static_resources"]["listeners"]
        .as_array_mut()
        .unwrap()
    {
        l["address"]["socket_address"]["address"] = "127.0.0.1".into();
    }
    for c in config["static_resources"]["clusters"]
        .as_array_mut()
        .unwrap()
    {
        let name = c["name"].as_str().unwrap().to_string();
        let address = &mut c["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]
            ["address"]["socket_address"];
        match name.as_str() {
            "ratelimit" => address["address"] = "127.0.0.1".into(),
            "envoy_admin" => address["port_value"] = admin_forward_port.into(),
            _ => {}
        }
    }
    config
}

fn write_config(dir: &Path, config: &Value) -> PathBuf {
    let path = dir.join("envoy.yaml");
    fs::write(&path, serde_json::to_vec_pretty(config).unwrap()).unwrap();
    path
}

/// Forwards connections on a port of our own to the Envoy admin port once it is known (the
/// harness gives the admin API a random port; the bootstrap's envoy_admin cluster needs one).
fn admin_forwarder() -> (u16, Arc<AtomicU16>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let target = Arc::new(AtomicU16::new(0));
    let t = target.clone();
    thread::spawn(move || {
        for client in listener.incoming().flatten() {
            let Ok(upstream) = TcpStream::connect(("127.0.0.1", t.load(Ordering::SeqCst))) else {
                continue;
            };
            let pipe = |mut from: TcpStream, mut to: TcpStream| {
                thread::spawn(move || {
                    let mut buf = [0u8; 8192];
                    while let Ok(n) = from.read(&mut buf) {
                        if n == 0 || to.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                    let _ = to.shutdown(std::net::Shutdown::Write);
                });
            };
            pipe(client.try_clone().unwrap(), upstream.try_clone().unwrap());
            pipe(upstream, client);
        }
    });
    (port, target)
}

fn listener_port(envoy: &Envoy, name: &str) -> u16 {
    let r = http::request(envoy.admin_port, "GET", "/listeners?format=json", &[], b"").unwrap();
    let all = r.json();
    let l = all["listener_statuses"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["name"] == name)
        .unwrap_or_else(|| panic!("no listener {name}: {all}"));
    l["local_address"]["socket_address"]["port_value"]
        .as_u64()
        .unwrap() as u16
}

/// The preStop command of the gateway Deployment in k8s/base/gateway.yaml.
fn pre_stop_script() -> String {
    let docs = load_yaml(&repo_root().join("k8s/base/gateway.yaml"));
    let deployment = docs
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["kind"] == "Deployment")
        .unwrap();
    let envoy = &deployment["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(envoy["name"], "envoy");
    let command = envoy["lifecycle"]["preStop"]["exec"]["command"]
        .as_array()
        .unwrap();
    assert_eq!(command[0], "/bin/bash");
    assert_eq!(command[1], "-c");
    command[2].as_str().unwrap().to_string()
}

fn models(envoy: &Envoy) -> Vec<String> {
    let r = envoy.request("GET", "/v1/models", &[], b"");
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn the_generated_kubernetes_and_istio_files_are_what_envoy_yaml_gives() {
    let root = repo_root();
    let files = k8s::generate(&root).unwrap();
    assert!(files.len() >= 5);
    for g in files {
        let committed = fs::read_to_string(root.join(&g.path)).unwrap_or_default();
        assert!(
            committed == g.text,
            "{} is not what envoy/envoy.yaml gives: run `make kubernetes-render` and commit it",
            g.path
        );
    }
}

#[test]
fn the_kubernetes_bootstrap_serves_probes_and_drains_in_the_real_envoy() {
    let fake = FakeProvider::start(0).unwrap();
    let (forward_port, admin_target) = admin_forwarder();
    let dir = scratch_dir("bootstrap");
    let config_file = write_config(&dir, &local_bootstrap(forward_port));
    let key = "sk-test-k8s-openai-key";
    let envoy = Envoy::start(Options {
        config_file: Some(config_file),
        upstreams: vec![
            ("openai".into(), fake.port),
            ("anthropic".into(), fake.port),
        ],
        env: vec![
            ("OPENAI_API_KEY".into(), key.into()),
            ("ANTHROPIC_API_KEY".into(), "test-anthropic".into()),
        ],
        concurrency: 2,
        ..Default::default()
    });
    admin_target.store(envoy.admin_port, Ordering::SeqCst);

    // The local demo provider is not deployed; keyed providers are on, the others off.
    let listed = models(&envoy);
    assert!(!listed.contains(&"demo-chat".to_string()), "{listed:?}");
    assert!(listed.contains(&"gpt-4o-mini".to_string()), "{listed:?}");
    assert!(
        listed.contains(&"claude-haiku-4-5".to_string()),
        "{listed:?}"
    );
    assert!(!listed.contains(&"command-a".to_string()), "{listed:?}");

    let r = envoy.chat(
        &json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi from k8s"}]}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let received = fake.received();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].path, "/v1/chat/completions");
    let bearer = format!("Bearer {key}");
    assert_eq!(received[0].header("authorization"), Some(bearer.as_str()));
    let r = envoy.chat(&json!({"model": "claude-haiku-4-5", "max_tokens": 20, "messages": [{"role": "user", "content": "hi"}]}));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(fake.received()[1].path, "/v1/messages");

    // The probes listener: /ready and the Prometheus page of the admin API, nothing else.
    let probes = listener_port(&envoy, "probes");
    let ready = http::request(probes, "GET", "/ready", &[], b"").unwrap();
    assert_eq!((ready.status, ready.text().trim()), (200, "LIVE"));
    let metrics = http::request(probes, "GET", "/stats/prometheus", &[], b"").unwrap();
    assert_eq!(metrics.status, 200);
    assert!(metrics.text().contains("gw_requests"), "{}", metrics.text());
    for (method, path) in [
        ("GET", "/config_dump"),
        ("POST", "/quitquitquit"),
        ("POST", "/ready"),
        ("GET", "/stats"),
    ] {
        let r = http::request(probes, method, path, &[], b"").unwrap();
        assert_eq!(
            r.status, 404,
            "{method} {path} must not reach the admin API"
        );
    }

    // The preStop hook drains the gateway listener and waits for the stream in flight.
    let gap = Duration::from_millis(300);
    let events = stream_events("gpt-4o-mini", "one two three four five six", None);
    let stream_time = gap * events.len() as u32;
    fake.push_reply(Reply::sse(&events, gap));
    let received_before = fake.received().len();
    let port = envoy.port;
    let started = Instant::now();
    let stream = thread::spawn(move || {
        let body = json!({"model": "gpt-4o-mini", "stream": true, "messages": [{"role": "user", "content": "slow"}]});
        let r = http::request(
            port,
            "POST",
            "/v1/chat/completions",
            &[("content-type", "application/json")],
            body.to_string().as_bytes(),
        )
        .unwrap();
        (r, started.elapsed())
    });
    // The hook must start while the stream is in flight: wait until the provider has it.
    let deadline = Instant::now() + Duration::from_secs(10);
    while fake.received().len() == received_before {
        assert!(
            Instant::now() < deadline,
            "the stream never reached the provider"
        );
        thread::sleep(Duration::from_millis(20));
    }
    let hook = Command::new("bash")
        .arg("-c")
        .arg(pre_stop_script())
        .env("ENVOY_ADMIN_PORT", envoy.admin_port.to_string())
        .output()
        .unwrap();
    let hook_done = started.elapsed();
    assert!(
        hook.status.success(),
        "preStop failed: {}",
        String::from_utf8_lossy(&hook.stderr)
    );
    let (response, stream_done) = stream.join().unwrap();
    assert_eq!(response.status, 200, "{}", response.text());
    assert!(response.text().contains("[DONE]"), "{}", response.text());
    assert!(
        stream_done >= stream_time.saturating_sub(gap * 2),
        "{stream_done:?}"
    );
    assert!(
        hook_done + Duration::from_millis(50) >= stream_done,
        "the preStop hook returned at {hook_done:?}, before the stream ended at {stream_done:?}"
    );
    assert!(hook_done < Duration::from_secs(20), "{hook_done:?}");
    // The probes listener is not inbound traffic: it keeps answering while the gateway drains.
    let ready = http::request(probes, "GET", "/ready", &[], b"").unwrap();
    assert_eq!(ready.status, 200);
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn the_istio_envoyfilter_routes_and_upstream_filters_work_in_the_real_envoy() {
    let root = repo_root();
    let filter = load_yaml(&root.join("k8s/istio/envoyfilter.yaml"));
    let plugin = load_yaml(&root.join("k8s/istio/wasmplugin.yaml"));
    let patches = filter["spec"]["configPatches"].as_array().unwrap();
    let of =
        |kind: &str| -> Vec<&Value> { patches.iter().filter(|p| p["applyTo"] == kind).collect() };

    // What istiod and istio-agent would hand Envoy, approximated: Istio's cluster names, the
    // EnvoyFilter's routes and cluster options, its EXTENSION_CONFIG served by (file) ECDS with
    // the module fetched locally, the WasmPlugin's configuration for the gateway filter.
    let dir = scratch_dir("istio");
    let mut extension = of("EXTENSION_CONFIG")[0]["patch"]["value"].clone();
    let extension_name = extension["name"].as_str().unwrap().to_string();
    extension["typed_config"]["config"]["vm_config"]["code"] =
        json!({"local": {"filename": wasm_path().display().to_string()}});
    extension["@type"] = "type.googleapis.com/envoy.config.core.v3.TypedExtensionConfig".into();
    let ecds = dir.join("ecds.yaml");
    fs::write(
        &ecds,
        serde_json::to_vec(&json!({"resources": [extension]})).unwrap(),
    )
    .unwrap();

    let mut config = local_bootstrap(1);
    let hosts: Vec<(String, String)> = of("CLUSTER")
        .iter()
        .map(|p| {
            let service = p["match"]["cluster"]["service"]
                .as_str()
                .unwrap()
                .to_string();
            let port = p["match"]["cluster"]["portNumber"].as_u64().unwrap();
            (service.clone(), format!("outbound|{port}||{service}"))
        })
        .collect();
    for c in config["static_resources"]["clusters"]
        .as_array_mut()
        .unwrap()
    {
        let host = c["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["hostname"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let Some((_, istio_name)) = hosts.iter().find(|(h, _)| *h == host) else {
            continue;
        };
        let patch = of("CLUSTER")
            .into_iter()
            .find(|p| p["match"]["cluster"]["service"] == host.as_str())
            .unwrap();
        let mut options = patch["patch"]["value"]["typed_extension_protocol_options"].clone();
        for (_, o) in options.as_object_mut().unwrap() {
            for f in o["http_filters"].as_array_mut().unwrap() {
                if f["name"] == extension_name.as_str() {
                    f["config_discovery"]["config_source"] = json!({
                        "resource_api_version": "V3",
                        "path_config_source": {"path": ecds.display().to_string()}});
                }
            }
        }
        c["name"] = istio_name.as_str().into();
        c["load_assignment"]["cluster_name"] = istio_name.as_str().into();
        c["typed_extension_protocol_options"] = options;
    }
    let vhost = &mut config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]
        ["typed_config"]["route_config"]["virtual_hosts"][0];
    let last_resort = vhost["routes"].as_array().unwrap().last().unwrap().clone();
    let mut routes: Vec<Value> = Vec::new();
    for p in of("HTTP_ROUTE") {
        assert_eq!(p["patch"]["operation"], "INSERT_FIRST");
        routes.insert(0, p["patch"]["value"].clone());
    }
    routes.push(last_resort);
    vhost["routes"] = Value::Array(routes);
    let config_file = write_config(&dir, &config);

    let fake = FakeProvider::start(0).unwrap();
    let envoy = Envoy::start(Options {
        config_file: Some(config_file),
        plugin_config: Some(plugin["spec"]["pluginConfig"].clone()),
        upstreams: hosts.iter().map(|(_, c)| (c.clone(), fake.port)).collect(),
        env: vec![
            ("OPENAI_API_KEY".into(), "test-openai".into()),
            ("ANTHROPIC_API_KEY".into(), "test-anthropic".into()),
        ],
        concurrency: 1,
        ..Default::default()
    });
    let r = envoy.chat(
        &json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "via istio"}]}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("x-gateway-provider"), Some("openai"));
    let r = envoy.chat(&json!({"model": "claude-haiku-4-5", "max_tokens": 20, "messages": [{"role": "user", "content": "via istio"}]}));
    assert_eq!(r.status, 200, "{}", r.text());
    let received = fake.received();
    assert_eq!(received.len(), 2);
    assert_eq!(received[0].path, "/v1/chat/completions");
    assert_eq!(
        received[0].header("authorization"),
        Some("Bearer test-openai")
    );
    assert_eq!(received[1].path, "/v1/messages");
    assert_eq!(received[1].header("x-api-key"), Some("test-anthropic"));
    assert_eq!(received[1].header("authorization"), None);
    let _ = fs::remove_dir_all(&dir);
}
