//! `make run`'s demo mode: every provider whose credentials are not in the environment is served
//! by the bundled demo provider in that provider's own wire format, so each translator works
//! without keys; a provider whose key is set stays real.
//!
//! Usage: demo-config OUT.json [DEMO_PORT]
//! Writes the Envoy config (envoy/envoy.yaml with the keyless providers' clusters pointed at the
//! demo provider) to OUT.json, and prints on stdout `export VAR=value` lines with demo
//! credentials for those providers (for the shell to eval), then one `# provider: ...` line each.

use gateway_tests::envoy::{load_config, point_clusters_at, repo_root};
use gateway_tests::fake::bedrock::{TEST_ACCESS_KEY_ID, TEST_SECRET_ACCESS_KEY};

/// Cluster, the variables that switch it to the real provider, and demo values for them.
const PROVIDERS: &[(&str, &[(&str, &str)])] = &[
    ("openai", &[("OPENAI_API_KEY", "demo-key")]),
    ("anthropic", &[("ANTHROPIC_API_KEY", "demo-key")]),
    ("gemini", &[("GEMINI_API_KEY", "demo-key")]),
    ("cohere", &[("COHERE_API_KEY", "demo-key")]),
    ("azure", &[("AZURE_OPENAI_API_KEY", "demo-key")]),
    // The demo provider checks Bedrock's SigV4 signatures with these test credentials.
    (
        "bedrock",
        &[
            ("AWS_ACCESS_KEY_ID", TEST_ACCESS_KEY_ID),
            ("AWS_SECRET_ACCESS_KEY", TEST_SECRET_ACCESS_KEY),
        ],
    ),
];

fn main() {
    let mut args = std::env::args().skip(1);
    let Some(out) = args.next() else {
        eprintln!("usage: demo-config OUT.json [DEMO_PORT]");
        std::process::exit(2);
    };
    let port = args.next().and_then(|p| p.parse().ok()).unwrap_or(10001);
    let is_set = |var: &str| std::env::var(var).is_ok_and(|v| !v.trim().is_empty());
    let mut demo = Vec::new();
    for (cluster, vars) in PROVIDERS {
        let real = vars.iter().all(|(var, _)| is_set(var));
        if real {
            println!("# {cluster}: real API");
            continue;
        }
        demo.push(cluster.to_string());
        for (var, value) in *vars {
            println!("export {var}='{value}'");
        }
        let names: Vec<&str> = vars.iter().map(|(v, _)| *v).collect();
        println!(
            "# {cluster}: demo provider (set {} for the real API)",
            names.join(" + ")
        );
    }
    let mut config = load_config(&repo_root().join("envoy/envoy.yaml"));
    point_clusters_at(&mut config, &demo, port);
    let json = serde_json::to_vec_pretty(&config).unwrap_or_default();
    if let Err(e) = std::fs::write(&out, json) {
        eprintln!("demo-config: writing {out}: {e}");
        std::process::exit(1);
    }
}
