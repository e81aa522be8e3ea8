//! The demo provider `make run` starts: an OpenAI-compatible server that needs no key.
//! Usage: fake-provider [PORT]   (default 10001)

fn main() {
    let port = std::env::args()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(10001);
    match gateway_tests::fake_provider::FakeProvider::start(port) {
        Ok(p) => {
            println!("demo provider listening on 127.0.0.1:{}", p.port);
            loop {
                std::thread::park();
            }
        }
        Err(e) => {
            eprintln!("demo provider: cannot listen on 127.0.0.1:{port}: {e}");
            std::process::exit(1);
        }
    }
}
