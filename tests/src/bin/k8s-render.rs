//! Writes the Kubernetes and Istio files derived from envoy/envoy.yaml (see tests/src/k8s.rs).
//! Usage: k8s-render           write them
//!        k8s-render --check   exit 1 when a committed file differs (nothing written)

use gateway_tests::k8s;

fn main() {
    let root = gateway_tests::envoy::repo_root();
    let check = std::env::args().any(|a| a == "--check");
    let result = if check {
        k8s::generate(&root).map(|files| {
            files
                .into_iter()
                .filter(|g| {
                    std::fs::read_to_string(root.join(&g.path)).ok() != Some(g.text.clone())
                })
                .map(|g| g.path)
                .collect()
        })
    } else {
        k8s::write_all(&root)
    };
    match result {
        Ok(paths) if paths.is_empty() => println!("k8s-render: every generated file is up to date"),
        Ok(paths) if check => {
            for p in &paths {
                eprintln!("k8s-render: {p} is not what envoy/envoy.yaml gives; run `make kubernetes-render`");
            }
            std::process::exit(1);
        }
        Ok(paths) => paths.iter().for_each(|p| println!("k8s-render: wrote {p}")),
        Err(e) => {
            eprintln!("k8s-render: {e}");
            std::process::exit(1);
        }
    }
}
