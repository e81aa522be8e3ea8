//! The Kubernetes and Istio files derived from `envoy/envoy.yaml`, the one source of truth.
//!
//! `cargo run -p gateway-tests --bin k8s-render` (or `make kubernetes-render`) writes them;
//! `tests/tests/kubernetes.rs` fails when a committed file differs from what [`generate`] gives.
//! What changes on the way from the local config to Kubernetes:
//!
//! - the gateway listener binds `0.0.0.0` (same port); the admin API stays on `127.0.0.1:9901`,
//!   and a `probes` listener on `0.0.0.0:9902` passes only `GET /ready` and `/stats/prometheus`
//!   on to it (for the kubelet's probes and Prometheus; the rest of the admin API stays private);
//! - the .wasm is read from the init container's volume ([`WASM_PATH`]);
//! - providers reached on loopback (the local demo provider) are dropped: their cluster, route,
//!   plugin-config entry and models;
//! - the access log goes to stdout (as in the local config);
//! - a `ratelimit` gRPC cluster points at the rate limit service (not called by the filter yet);
//! - the overload manager caps downstream connections.
//!
//! For Istio the same providers become ServiceEntries and DestinationRules, the same plugin
//! configuration goes to the WasmPlugin (downstream role) and to an EnvoyFilter (upstream role,
//! routes by filter state, buffer filter), with Istio's cluster names `outbound|443||host`.

use std::fmt::Write as _;
use std::fs;
use std::path::Path;

use serde_yaml::Value;

/// Where the init container puts the plugin in the Envoy pod.
pub const WASM_PATH: &str = "/etc/envoy/wasm/plugin.wasm";
/// Where the downstream-TLS example mounts the cert-manager Secret.
pub const TLS_DIR: &str = "/etc/envoy/tls";
/// Where the Deployment mounts ConfigMap envoy-bootstrap.
pub const CONFIG_DIR: &str = "/etc/envoy/config";
/// The listener that exposes `/ready` and `/stats/prometheus` of the admin API to the pod network.
pub const PROBE_PORT: u64 = 9902;
/// The rate limit service (k8s/base/ratelimit.yaml): Service name and gRPC port.
pub const RATELIMIT_HOST: &str = "ratelimit";
pub const RATELIMIT_PORT: u64 = 8081;
/// The Wasm OCI image placeholder (k8s/Dockerfile builds it; README says where to set yours).
pub const WASM_IMAGE: &str = "registry.example.com/ai-gateway/wasm-plugin:0.1.0";
/// The workload label of the dedicated Istio gateway (k8s/istio/gateway-deployment.yaml).
pub const ISTIO_GATEWAY_LABEL: &str = "ai-gateway";
/// Istio gateways listen on 8080 for the Gateway's port 80.
pub const ISTIO_GATEWAY_PORT: u64 = 8080;
/// The ECDS resource name of the upstream ("provider") role in Istio.
pub const ISTIO_PROVIDER_FILTER: &str = "ai-gateway-provider";

const WASM_TYPE: &str = "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm";
const HTTP_OPTIONS: &str = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions";

/// One generated file: its path from the repository root and its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Generated {
    pub path: String,
    pub text: String,
}

/// A provider cluster of the source config that is reached over the network.
#[derive(Debug, Clone)]
pub struct Provider {
    pub cluster: String,
    pub host: String,
    pub port: u64,
    pub sni: String,
    pub sans: Vec<String>,
}

impl Provider {
    /// The cluster Istio generates for a ServiceEntry host and port.
    pub fn istio_cluster(&self) -> String {
        format!("outbound|{}||{}", self.port, self.host)
    }
}

/// The source config, parsed: anchors resolved, merge keys applied.
pub struct Source {
    pub config: Value,
    /// Providers reached over the network, in the source's order.
    pub providers: Vec<Provider>,
    /// Clusters reached on loopback (development only).
    pub local_clusters: Vec<String>,
    /// The plugin configuration, as an ordered document.
    pub plugin_config: Value,
    /// `vm_config.environment_variables.host_env_keys`.
    pub host_env_keys: Vec<String>,
    /// The gateway filter's `reload_config` (how soon a failed VM is replaced), if any.
    pub reload_config: Value,
}

pub fn load_source(path: &Path) -> Result<Source, String> {
    let text = fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut config: Value =
        serde_yaml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    config
        .apply_merge()
        .map_err(|e| format!("{}: {e}", path.display()))?;

    let mut providers = Vec::new();
    let mut local_clusters = Vec::new();
    for cluster in seq(&config["static_resources"]["clusters"]) {
        let name = str_of(&cluster["name"]);
        if !has_provider_filter(cluster) {
            continue;
        }
        let endpoint = &cluster["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"];
        let address = str_of(&endpoint["address"]["socket_address"]["address"]);
        let port = endpoint["address"]["socket_address"]["port_value"]
            .as_u64()
            .ok_or_else(|| format!("cluster {name}: no port"))?;
        if address == "127.0.0.1" || address == "localhost" || address == "::1" {
            local_clusters.push(name);
            continue;
        }
        let tls = &cluster["transport_socket"]["typed_config"];
        let sni = str_of(&tls["sni"]);
        if sni.is_empty() {
            return Err(format!(
                "cluster {name}: a remote provider without TLS SNI; Kubernetes files need TLS with SNI and SAN validation"
            ));
        }
        let sans =
            seq(&tls["common_tls_context"]["validation_context"]["match_typed_subject_alt_names"])
                .iter()
                .map(|m| str_of(&m["matcher"]["exact"]))
                .filter(|s| !s.is_empty())
                .collect();
        providers.push(Provider {
            cluster: name,
            host: address,
            port,
            sni,
            sans,
        });
    }

    let mut plugin_text = None;
    let mut host_env_keys = Vec::new();
    let mut reload_config = Value::Null;
    walk(&config, &mut |key, value| {
        if key == "config" && value["root_id"].as_str() == Some("gateway") {
            plugin_text = value["configuration"]["value"].as_str().map(str::to_string);
            reload_config = value["reload_config"].clone();
            host_env_keys = seq(&value["vm_config"]["environment_variables"]["host_env_keys"])
                .iter()
                .map(str_of)
                .collect();
        }
    });
    let plugin_text = plugin_text.ok_or("no wasm filter with root_id gateway")?;
    let plugin_config: Value =
        serde_yaml::from_str(&plugin_text).map_err(|e| format!("plugin configuration: {e}"))?;
    Ok(Source {
        config,
        providers,
        local_clusters,
        plugin_config,
        host_env_keys,
        reload_config,
    })
}

/// The plugin configuration without the providers on loopback (and their models); with
/// `istio`, each remaining provider's `cluster` is Istio's name for it.
pub fn deployed_plugin_config(source: &Source, istio: bool) -> Value {
    let mut config = source.plugin_config.clone();
    let mut dropped = Vec::new();
    if let Some(providers) = config["providers"].as_mapping_mut() {
        providers.retain(|id, p| {
            let id = str_of(id);
            let cluster = p["cluster"].as_str().unwrap_or(&id).to_string();
            let keep = !source.local_clusters.contains(&cluster);
            if !keep {
                dropped.push(id);
            }
            keep
        });
        if istio {
            for (id, p) in providers.iter_mut() {
                let cluster = p["cluster"]
                    .as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| str_of(id));
                if let Some(provider) = source.providers.iter().find(|x| x.cluster == cluster) {
                    p["cluster"] = Value::from(provider.istio_cluster());
                }
            }
        }
    }
    if let Some(models) = config["models"].as_mapping_mut() {
        models.retain(|_, m| !dropped.contains(&str_of(&m["provider"])));
    }
    config
}

fn json_text(value: &Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_default() + "\n"
}

/// The Envoy bootstrap for Kubernetes (k8s/base/envoy/envoy.yaml).
pub fn kubernetes_bootstrap(source: &Source) -> Value {
    let mut config = source.config.clone();
    let plugin = json_text(&deployed_plugin_config(source, false));
    let local = source.local_clusters.clone();

    if let Some(clusters) = config["static_resources"]["clusters"].as_sequence_mut() {
        clusters.retain(|c| !local.contains(&str_of(&c["name"])));
    }
    walk_mut(&mut config, &mut |key, value| match key {
        "routes" => {
            if let Some(routes) = value.as_sequence_mut() {
                routes.retain(|r| !local.contains(&str_of(&r["route"]["cluster"])));
            }
        }
        // A matcher cluster specifier's map (filter state -> cluster).
        "map" => {
            if let Some(map) = value.as_mapping_mut() {
                map.retain(|k, _| !local.contains(&str_of(k)));
            }
        }
        "code" if value["local"]["filename"].is_string() => {
            value["local"]["filename"] = Value::from(WASM_PATH);
        }
        "configuration" if str_of(&value["@type"]).ends_with("StringValue") => {
            value["value"] = Value::from(plugin.clone());
        }
        "typed_config" if str_of(&value["@type"]).ends_with("FileAccessLog") => {
            value["path"] = Value::from("/dev/stdout");
        }
        _ => {}
    });
    if let Some(listeners) = config["static_resources"]["listeners"].as_sequence_mut() {
        for l in listeners.iter_mut() {
            l["address"]["socket_address"]["address"] = Value::from("0.0.0.0");
            // What the preStop hook's `/drain_listeners?inboundonly` drains (not the probes).
            l["traffic_direction"] = Value::from("INBOUND");
        }
        listeners.push(probe_listener());
    }
    if let Some(clusters) = config["static_resources"]["clusters"].as_sequence_mut() {
        clusters.push(admin_cluster(&config_admin_port(&source.config)));
        clusters.push(ratelimit_cluster());
    }
    // Needed by file-based SDS (the downstream TLS example); names this Envoy in its admin API.
    config["node"] = yaml("{id: ai-gateway, cluster: ai-gateway}");
    config["overload_manager"] = yaml(
        r#"
refresh_interval: 0.25s
resource_monitors:
- name: envoy.resource_monitors.global_downstream_max_connections
  typed_config:
    "@type": type.googleapis.com/envoy.extensions.resource_monitors.downstream_connections.v3.DownstreamConnectionsConfig
    max_active_downstream_connections: 50000
"#,
    );
    config
}

fn config_admin_port(config: &Value) -> u64 {
    config["admin"]["address"]["socket_address"]["port_value"]
        .as_u64()
        .unwrap_or(9901)
}

fn probe_listener() -> Value {
    yaml(&format!(
        r#"
name: probes
address: {{socket_address: {{address: 0.0.0.0, port_value: {PROBE_PORT}}}}}
filter_chains:
- filters:
  - name: envoy.filters.network.http_connection_manager
    typed_config:
      "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
      stat_prefix: probes
      route_config:
        name: probes
        virtual_hosts:
        - name: probes
          domains: ["*"]
          routes:
          - match: {{path: /ready, headers: [{{name: ":method", string_match: {{exact: GET}}}}]}}
            route: {{cluster: envoy_admin}}
          - match: {{path: /stats/prometheus, headers: [{{name: ":method", string_match: {{exact: GET}}}}]}}
            route: {{cluster: envoy_admin}}
          - match: {{prefix: /}}
            direct_response: {{status: 404}}
      http_filters:
      - name: envoy.filters.http.router
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
"#
    ))
}

fn admin_cluster(port: &u64) -> Value {
    yaml(&format!(
        r#"
name: envoy_admin
type: STATIC
connect_timeout: 1s
load_assignment:
  cluster_name: envoy_admin
  endpoints:
  - lb_endpoints:
    - endpoint: {{address: {{socket_address: {{address: 127.0.0.1, port_value: {port}}}}}}}
"#
    ))
}

fn ratelimit_cluster() -> Value {
    yaml(&format!(
        r#"
name: ratelimit
type: STRICT_DNS
dns_lookup_family: V4_PREFERRED
connect_timeout: 1s
load_assignment:
  cluster_name: ratelimit
  endpoints:
  - lb_endpoints:
    - endpoint: {{address: {{socket_address: {{address: {RATELIMIT_HOST}, port_value: {RATELIMIT_PORT}}}}}}}
typed_extension_protocol_options:
  {HTTP_OPTIONS}:
    "@type": type.googleapis.com/{HTTP_OPTIONS}
    explicit_http_config: {{http2_protocol_options: {{}}}}
"#
    ))
}

/// The Kubernetes bootstrap with downstream TLS on the gateway listener (certificate and key
/// from the cert-manager Secret mounted at [`TLS_DIR`], through file-based SDS).
pub fn tls_bootstrap(kubernetes: &Value) -> Value {
    let mut config = kubernetes.clone();
    if let Some(listeners) = config["static_resources"]["listeners"].as_sequence_mut() {
        for l in listeners
            .iter_mut()
            .filter(|l| l["name"].as_str() != Some("probes"))
        {
            if let Some(chain) = l["filter_chains"]
                .as_sequence_mut()
                .and_then(|c| c.first_mut())
            {
                chain["transport_socket"] = yaml(&format!(
                    r#"
name: envoy.transport_sockets.tls
typed_config:
  "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext
  common_tls_context:
    alpn_protocols: [h2, http/1.1]
    # k8s/overlays/prod-tls/tls-sds.yaml: the certificate files, re-read after renewals.
    tls_certificate_sds_secret_configs:
    - name: gateway_tls
      sds_config:
        resource_api_version: V3
        path_config_source: {{path: {CONFIG_DIR}/tls-sds.yaml}}
"#
                ));
            }
        }
    }
    config
}

/// Every generated file, from the source at `root/envoy/envoy.yaml`.
pub fn generate(root: &Path) -> Result<Vec<Generated>, String> {
    let source = load_source(&root.join("envoy/envoy.yaml"))?;
    let header = |what: &str| {
        format!(
            "# GENERATED from envoy/envoy.yaml by `make kubernetes-render` (tests/src/k8s.rs): do not edit.\n\
             # {what}\n"
        )
    };
    let k8s = kubernetes_bootstrap(&source);
    let mut out = vec![
        Generated {
            path: "k8s/base/envoy/envoy.yaml".into(),
            text: header(
                "The Envoy bootstrap of the Kubernetes Deployment (ConfigMap envoy-bootstrap).",
            ) + &to_yaml(&k8s),
        },
        Generated {
            path: "k8s/overlays/prod-tls/envoy.yaml".into(),
            text: header(
                "The same bootstrap with downstream TLS (certificate from cert-manager's Secret).",
            ) + &to_yaml(&tls_bootstrap(&k8s)),
        },
    ];
    out.push(Generated {
        path: "k8s/istio/providers.yaml".into(),
        text: header(
            "ServiceEntry and DestinationRule (TLS origination, SNI, SAN check) per provider.",
        ) + &istio_providers(&source),
    });
    out.push(Generated {
        path: "k8s/istio/wasmplugin.yaml".into(),
        text: header("The downstream (\"gateway\") role on the Istio gateway.")
            + &wasm_plugin_text(&source),
    });
    out.push(Generated {
        path: "k8s/istio/envoyfilter.yaml".into(),
        text: header(
            "What WasmPlugin cannot express: the upstream (\"provider\") role in every provider \
             cluster,\n# the buffer filter, the routes by filter state, the body limit and the stream timeout.",
        ) + &to_yaml(&envoy_filter(&source)),
    });
    Ok(out)
}

fn istio_providers(source: &Source) -> String {
    let mut text = String::new();
    for p in &source.providers {
        let sans = if p.sans.is_empty() {
            vec![p.sni.clone()]
        } else {
            p.sans.clone()
        };
        let entry = yaml(&format!(
            r#"
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: {name}
spec:
  hosts: [{host}]
  exportTo: ["."]
  location: MESH_EXTERNAL
  resolution: DNS
  ports:
  - {{number: {port}, name: https, protocol: HTTPS}}
"#,
            name = p.cluster,
            host = p.host,
            port = p.port,
        ));
        let rule = yaml(&format!(
            r#"
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: {name}
spec:
  host: {host}
  exportTo: ["."]
  trafficPolicy:
    portLevelSettings:
    - port: {{number: {port}}}
      tls:
        mode: SIMPLE
        sni: {sni}
        subjectAltNames: [{sans}]
"#,
            name = p.cluster,
            host = p.host,
            port = p.port,
            sni = p.sni,
            sans = sans.join(", "),
        ));
        let _ = write!(text, "---\n{}---\n{}", to_yaml(&entry), to_yaml(&rule));
    }
    text
}

fn env_list(source: &Source) -> Value {
    Value::Sequence(
        source
            .host_env_keys
            .iter()
            .map(|k| yaml(&format!("{{name: {k}, valueFrom: HOST}}")))
            .collect(),
    )
}

fn wasm_plugin(source: &Source) -> Value {
    let mut plugin = yaml(&format!(
        r#"
apiVersion: extensions.istio.io/v1alpha1
kind: WasmPlugin
metadata:
  name: ai-gateway
spec:
  selector:
    matchLabels: {{istio: {ISTIO_GATEWAY_LABEL}}}
  # Set url and sha256 in k8s/istio/kustomization.yaml.
  url: oci://{WASM_IMAGE}
  imagePullPolicy: IfNotPresent
  pluginName: gateway
  # Right before the router; the EnvoyFilter puts the buffer filter between the two.
  phase: UNSPECIFIED_PHASE
  type: HTTP
  # A VM that fails (e.g. runs out of memory) is reloaded rather than failing every later
  # request (Istio 1.27+; README "When the VM fails").
  failStrategy: FAIL_RELOAD
  vmConfig: {{}}
"#
    ));
    plugin["spec"]["vmConfig"]["env"] = env_list(source);
    plugin
}

/// The WasmPlugin as YAML, its `pluginConfig` written as JSON (valid YAML): every string stays
/// quoted, so that no YAML 1.1 reader (Go's, kubectl's) takes `2024-10-21` for a timestamp.
fn wasm_plugin_text(source: &Source) -> String {
    let json =
        serde_json::to_string_pretty(&deployed_plugin_config(source, true)).unwrap_or_default();
    let mut text = to_yaml(&wasm_plugin(source));
    text.push_str("  pluginConfig:\n");
    for line in json.lines() {
        let _ = writeln!(text, "    {line}");
    }
    text
}

fn envoy_filter(source: &Source) -> Value {
    let plugin = json_text(&deployed_plugin_config(source, true));
    let mut patches = Vec::new();

    let mut extension = yaml(&format!(
        r#"
applyTo: EXTENSION_CONFIG
patch:
  operation: ADD
  value:
    name: {ISTIO_PROVIDER_FILTER}
    typed_config:
      "@type": {WASM_TYPE}
      config:
        name: ai_gateway_provider
        root_id: provider
        failure_policy: FAIL_RELOAD
        vm_config:
          vm_id: ai_gateway_provider
          runtime: envoy.wasm.runtime.v8
          # istio-agent fetches the image (as for the WasmPlugin) and hands Envoy a local file.
          # Set uri and sha256 in k8s/istio/kustomization.yaml.
          code:
            remote:
              http_uri: {{uri: "oci://{WASM_IMAGE}", cluster: _, timeout: 30s}}
              sha256: "nil"
          environment_variables: {{host_env_keys: []}}
        configuration:
          "@type": type.googleapis.com/google.protobuf.StringValue
          value: ""
"#
    ));
    let config = &mut extension["patch"]["value"]["typed_config"]["config"];
    if !source.reload_config.is_null() {
        config["reload_config"] = source.reload_config.clone();
    }
    config["vm_config"]["environment_variables"]["host_env_keys"] = Value::Sequence(
        source
            .host_env_keys
            .iter()
            .map(|k| Value::from(k.as_str()))
            .collect(),
    );
    config["configuration"]["value"] = Value::from(plugin);
    patches.push(extension);

    patches.push(yaml(&format!(
        r#"
applyTo: HTTP_FILTER
match:
  context: GATEWAY
  listener:
    portNumber: {ISTIO_GATEWAY_PORT}
    filterChain:
      filter:
        name: envoy.filters.network.http_connection_manager
        subFilter: {{name: envoy.filters.http.router}}
patch:
  operation: INSERT_BEFORE
  value:
    name: envoy.filters.http.buffer
    typed_config:
      "@type": type.googleapis.com/envoy.extensions.filters.http.buffer.v3.Buffer
      max_request_bytes: 10485760
"#
    )));
    patches.push(yaml(&format!(
        r#"
applyTo: NETWORK_FILTER
match:
  context: GATEWAY
  listener:
    portNumber: {ISTIO_GATEWAY_PORT}
    filterChain:
      filter: {{name: envoy.filters.network.http_connection_manager}}
patch:
  operation: MERGE
  value:
    name: envoy.filters.network.http_connection_manager
    typed_config:
      "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
      stream_idle_timeout: 300s
"#
    )));
    patches.push(yaml(
        r#"
applyTo: VIRTUAL_HOST
match:
  context: GATEWAY
  routeConfiguration:
    portNumber: 80
    vhost: {name: "*:80"}
patch:
  operation: MERGE
  value:
    request_body_buffer_limit: 10485760
"#,
    ));
    // The routes of envoy/envoy.yaml that select providers (by the filter's decision in filter
    // state), with Istio's cluster names, ahead of the VirtualService's last-resort route.
    for route in istio_routes(source).into_iter().rev() {
        let mut patch = yaml(
            r#"
applyTo: HTTP_ROUTE
match:
  context: GATEWAY
  routeConfiguration:
    portNumber: 80
    vhost: {name: "*:80"}
patch:
  operation: INSERT_FIRST
"#,
        );
        patch["patch"]["value"] = route;
        patches.push(patch);
    }
    for p in &source.providers {
        patches.push(yaml(&format!(
            r#"
applyTo: CLUSTER
match:
  context: GATEWAY
  cluster: {{service: {host}, portNumber: {port}}}
patch:
  operation: MERGE
  value:
    typed_extension_protocol_options:
      {HTTP_OPTIONS}:
        "@type": type.googleapis.com/{HTTP_OPTIONS}
        explicit_http_config: {{http_protocol_options: {{}}}}
        http_filters:
        - name: {ISTIO_PROVIDER_FILTER}
          config_discovery:
            config_source: {{ads: {{}}}}
            type_urls: ["{WASM_TYPE}"]
        - name: envoy.filters.http.buffer
          typed_config:
            "@type": type.googleapis.com/envoy.extensions.filters.http.buffer.v3.Buffer
            max_request_bytes: 10485760
        - name: envoy.filters.http.upstream_codec
          typed_config:
            "@type": type.googleapis.com/envoy.extensions.filters.http.upstream_codec.v3.UpstreamCodec
"#,
            host = p.host,
            port = p.port,
        )));
    }
    let mut filter = yaml(&format!(
        r#"
apiVersion: networking.istio.io/v1alpha3
kind: EnvoyFilter
metadata:
  name: ai-gateway
spec:
  workloadSelector:
    labels: {{istio: {ISTIO_GATEWAY_LABEL}}}
  configPatches: []
"#
    ));
    filter["spec"]["configPatches"] = Value::Sequence(patches);
    filter
}

/// The gateway virtual host's provider routes (all but the last-resort direct response) of the
/// Kubernetes bootstrap, every cluster name replaced by Istio's.
pub fn istio_routes(source: &Source) -> Vec<Value> {
    let k8s = kubernetes_bootstrap(source);
    let rename = |name: &str| {
        source
            .providers
            .iter()
            .find(|p| p.cluster == name)
            .map(Provider::istio_cluster)
    };
    let mut routes = Vec::new();
    walk(
        &k8s["static_resources"]["listeners"][0],
        &mut |key, value| {
            if key == "routes" {
                routes.extend(seq(value).iter().filter(|r| !r["route"].is_null()).cloned());
            }
        },
    );
    for route in &mut routes {
        walk_mut(route, &mut |key, value| {
            if key == "cluster" {
                if let Some(new) = value.as_str().and_then(rename) {
                    *value = Value::from(new);
                }
            }
            if key == "map" {
                if let Some(map) = value.as_mapping_mut() {
                    let renamed: serde_yaml::Mapping = map
                        .iter()
                        .map(|(k, v)| {
                            let k = k
                                .as_str()
                                .and_then(rename)
                                .map(Value::from)
                                .unwrap_or_else(|| k.clone());
                            (k, v.clone())
                        })
                        .collect();
                    *map = renamed;
                }
            }
        });
    }
    routes
}

fn has_provider_filter(cluster: &Value) -> bool {
    let mut found = false;
    walk(
        &cluster["typed_extension_protocol_options"],
        &mut |key, v| {
            if key == "config" && v["root_id"].as_str() == Some("provider") {
                found = true;
            }
        },
    );
    found
}

/// Parses a YAML snippet written in this file (a bug here is a programming error).
fn yaml(text: &str) -> Value {
    serde_yaml::from_str(text).unwrap_or_else(|e| panic!("bad YAML snippet: {e}\n{text}"))
}

pub fn to_yaml(value: &Value) -> String {
    serde_yaml::to_string(value).unwrap_or_default()
}

fn str_of(value: &Value) -> String {
    value.as_str().unwrap_or_default().to_string()
}

fn seq(value: &Value) -> &[Value] {
    value.as_sequence().map(Vec::as_slice).unwrap_or_default()
}

fn walk(value: &Value, f: &mut impl FnMut(&str, &Value)) {
    match value {
        Value::Mapping(map) => {
            for (k, v) in map {
                f(k.as_str().unwrap_or_default(), v);
                walk(v, f);
            }
        }
        Value::Sequence(items) => items.iter().for_each(|v| walk(v, f)),
        _ => {}
    }
}

fn walk_mut(value: &mut Value, f: &mut impl FnMut(&str, &mut Value)) {
    match value {
        Value::Mapping(map) => {
            for (k, v) in map.iter_mut() {
                f(k.as_str().unwrap_or_default(), v);
                walk_mut(v, f);
            }
        }
        Value::Sequence(items) => items.iter_mut().for_each(|v| walk_mut(v, f)),
        _ => {}
    }
}

/// Writes every generated file under `root`; returns the paths that changed.
pub fn write_all(root: &Path) -> Result<Vec<String>, String> {
    let mut changed = Vec::new();
    for g in generate(root)? {
        let path = root.join(&g.path);
        if fs::read_to_string(&path).ok().as_deref() != Some(g.text.as_str()) {
            if let Some(dir) = path.parent() {
                fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
            }
            fs::write(&path, &g.text).map_err(|e| format!("{}: {e}", path.display()))?;
            changed.push(g.path);
        }
    }
    Ok(changed)
}
