//! The cache's shared tier: entries every Envoy sees, in an HTTP vector store reached by
//! callouts (stock proxy-wasm makes HTTP calls, not Redis calls). Host-free: a store builds the
//! calls it needs and reads their answers; the pipeline stage (`pipeline/cache/shared.rs`)
//! makes them and the root context resolves the collection (`collection.rs`).
//!
//! What is stored: under the exact key's hash (hex, already a hash of namespace and request),
//! the entry sealed with AES-256-GCM (`seal.rs`), its expiry time, a hash of its namespace and,
//! for semantic entries, a vector and a context hash. Never a prompt or an answer in plain text,
//! nor a team or key name. Vectors stay plain so the store can search them.
//!
//! Another store is a module implementing [`VectorStore`] and a variant of `config::Store`.

pub mod chroma;
#[cfg(test)]
mod chroma_tests;
pub mod collection;
pub mod config;
pub mod seal;
pub mod semantic;

pub use config::SharedTier;

/// One HTTP call to the store: a POST of a JSON body to the tier's cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreCall {
    pub path: String,
    pub body: Vec<u8>,
}

/// One entry to write.
#[derive(Debug, Clone, PartialEq)]
pub struct Record<'a> {
    /// [`record_id`] of the exact key.
    pub id: &'a str,
    pub sealed: &'a [u8],
    /// Unix seconds from which the entry is no longer served.
    pub expires_at: u64,
    /// [`namespace_hash`] of the entry's namespace.
    pub namespace: &'a str,
    /// Semantic entries: the text's vector and the hash of everything else that must match.
    pub vector: Option<(&'a [f32], &'a str)>,
}

/// An entry read by id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub sealed: Vec<u8>,
    pub expires_at: u64,
}

/// An entry found near a vector.
#[derive(Debug, Clone, PartialEq)]
pub struct Neighbour {
    pub id: String,
    /// The store's distance (for a cosine space, 1 - cosine similarity).
    pub distance: f64,
    pub sealed: Vec<u8>,
    pub expires_at: u64,
    /// Its vector, when the store sent it back (the local index keeps it on a hit).
    pub vector: Option<Vec<f32>>,
}

/// Why a call to the store gave nothing usable. Every one is a miss for the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreError {
    /// Envoy could not connect (or the cluster has no healthy host).
    Unreachable,
    /// The call ran past its timeout.
    TimedOut,
    /// The collection the filter knew is gone (the store was reset): look it up again.
    CollectionGone,
    /// Another status than success.
    Status(String),
    /// A success whose body is not the store's documented answer.
    Malformed,
}

impl StoreError {
    /// The `outcome` label of the stat.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Unreachable => "unreachable",
            Self::TimedOut => "timeout",
            Self::CollectionGone => "collection_gone",
            Self::Status(_) => "error",
            Self::Malformed => "malformed",
        }
    }

    /// Envoy answers a callout that ran out of time with its own 504, and one that could not
    /// connect with a 503 (or no status at all).
    pub fn of_status(status: &str) -> Option<Self> {
        match status {
            "200" | "201" => None,
            "504" => Some(Self::TimedOut),
            "" | "503" => Some(Self::Unreachable),
            "404" => Some(Self::CollectionGone),
            other => Some(Self::Status(other.to_string())),
        }
    }
}

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Unreachable => f.write_str("unreachable"),
            Self::TimedOut => f.write_str("timed out"),
            Self::CollectionGone => f.write_str("the collection is gone"),
            Self::Status(s) => write!(f, "answered {s}"),
            Self::Malformed => f.write_str("answered something unreadable"),
        }
    }
}

/// The calls a vector store answers, as requests to make and answers to read. `collection` is
/// the store's handle of the collection, learned by [`VectorStore::collection_call`].
pub trait VectorStore {
    /// Creates the tier's collection, or finds it when it exists.
    fn collection_call(&self) -> StoreCall;
    /// The collection's handle.
    fn collection_answer(&self, status: &str, body: &[u8]) -> Result<String, StoreError>;
    /// Reads the entry `id`.
    fn get_call(&self, collection: &str, id: &str) -> StoreCall;
    fn get_answer(&self, id: &str, status: &str, body: &[u8]) -> Result<Option<Found>, StoreError>;
    /// Writes (or replaces) an entry.
    fn put_call(&self, collection: &str, record: &Record<'_>) -> StoreCall;
    fn put_answer(&self, status: &str, body: &[u8]) -> Result<(), StoreError>;
    /// The `k` entries nearest `vector` in one namespace and context, unexpired at `now`.
    fn query_call(
        &self,
        collection: &str,
        vector: &[f32],
        context: &str,
        namespace: &str,
        k: u32,
        now: u64,
    ) -> StoreCall;
    fn query_answer(&self, status: &str, body: &[u8]) -> Result<Vec<Neighbour>, StoreError>;
}

/// The store's id of an exact key.
pub fn record_id(key: &[u8; 32]) -> String {
    crate::sha256::hex(key)
}

/// What the store keeps of a namespace: a hash (team and key names stay in the gateway).
pub fn namespace_hash(namespace: &str) -> String {
    let digest = crate::sha256::digest(format!("gw-cache-ns-1\n{namespace}").as_bytes());
    crate::sha256::hex(digest.get(..16).unwrap_or(&digest))
}
