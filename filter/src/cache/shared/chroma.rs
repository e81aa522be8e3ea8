//! Chroma (HTTP API v2, chromadb 1.5) as the shared tier's store. The routes and bodies are
//! those of the OpenAPI document `chroma run` serves at `/openapi.json` and of the server's
//! router (chroma-core/chroma `rust/frontend/src/server.rs`); `filter/testdata/chroma/README.md`
//! lists what is used:
//!
//! - `POST /api/v2/tenants/{tenant}/databases/{database}/collections` with `{"name",
//!   "get_or_create": true, "configuration": {"hnsw": {"space": "cosine"}}}` creates the
//!   collection or returns it (`CreateCollectionPayload`);
//!   the answer's `id` (a UUID) names it in every other route;
//! - `.../collections/{id}/get` with `{"ids", "include": ["metadatas"]}` (`GetRequestPayload`,
//!   answer `GetResponse`: `ids` and `metadatas`, index by index);
//! - `.../collections/{id}/upsert` with `{"ids", "embeddings", "metadatas"}`
//!   (`UpsertCollectionRecordsPayload`; `embeddings` is required);
//! - `.../collections/{id}/query` with `{"query_embeddings", "n_results", "where", "include"}`
//!   (`QueryRequestPayload`, answer `QueryResponse`: one list per query embedding, and with
//!   `embeddings` included each neighbour's vector, or null), the `where` filter an `$and` of
//!   `$eq` and `$gt` clauses.
//!
//! A record: the sealed entry in base64 in metadata `sealed` (metadata, not the document:
//! Chroma builds a full-text index of documents), `expires_at` (unix seconds), `ns` (namespace
//! hash) and, for semantic entries, `ctx` (context hash). Chroma needs a vector per record and
//! fixes a collection's dimension at its first record: exact entries carry the one-dimension
//! vector `[1.0]`, so semantic entries (vectors of an embeddings model) need a collection of
//! their own (another [`Chroma`] with another `collection`).

use base64::Engine;
use serde_json::{json, Value};

use super::{Found, Neighbour, Record, StoreCall, StoreError, VectorStore};

/// The vector of exact entries (never searched; Chroma requires one).
const EXACT_VECTOR: [f32; 1] = [1.0];

/// One collection of a Chroma server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chroma {
    pub tenant: String,
    pub database: String,
    pub collection: String,
}

impl Chroma {
    fn collections(&self) -> String {
        format!(
            "/api/v2/tenants/{}/databases/{}/collections",
            self.tenant, self.database
        )
    }

    fn call(&self, collection: &str, route: &str, body: &Value) -> StoreCall {
        StoreCall {
            path: format!("{}/{collection}/{route}", self.collections()),
            body: body.to_string().into_bytes(),
        }
    }
}

fn parse(status: &str, body: &[u8]) -> Result<Value, StoreError> {
    if let Some(e) = StoreError::of_status(status) {
        return Err(e);
    }
    serde_json::from_slice(body).map_err(|_| StoreError::Malformed)
}

/// The sealed entry and expiry of a record's metadata.
fn entry_of(metadata: &Value) -> Result<(Vec<u8>, u64), StoreError> {
    let sealed = metadata
        .get("sealed")
        .and_then(Value::as_str)
        .and_then(|s| base64::engine::general_purpose::STANDARD.decode(s).ok())
        .ok_or(StoreError::Malformed)?;
    let expires_at = metadata
        .get("expires_at")
        .and_then(Value::as_u64)
        .ok_or(StoreError::Malformed)?;
    Ok((sealed, expires_at))
}

impl VectorStore for Chroma {
    fn collection_call(&self) -> StoreCall {
        StoreCall {
            path: self.collections(),
            // Cosine distance, so that a semantic collection's distance is 1 - similarity.
            body: json!({"name": self.collection, "get_or_create": true,
                         "configuration": {"hnsw": {"space": "cosine"}}})
            .to_string()
            .into_bytes(),
        }
    }

    fn collection_answer(&self, status: &str, body: &[u8]) -> Result<String, StoreError> {
        let v = parse(status, body)?;
        let id = v
            .get("id")
            .and_then(Value::as_str)
            .ok_or(StoreError::Malformed)?;
        // It goes into paths: a UUID's characters only.
        if id.is_empty() || id.len() > 64 || !id.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-')
        {
            return Err(StoreError::Malformed);
        }
        Ok(id.to_string())
    }

    fn get_call(&self, collection: &str, id: &str) -> StoreCall {
        self.call(
            collection,
            "get",
            &json!({"ids": [id], "include": ["metadatas"]}),
        )
    }

    fn get_answer(&self, id: &str, status: &str, body: &[u8]) -> Result<Option<Found>, StoreError> {
        let v = parse(status, body)?;
        let ids = v
            .get("ids")
            .and_then(Value::as_array)
            .ok_or(StoreError::Malformed)?;
        let Some(at) = ids.iter().position(|i| i.as_str() == Some(id)) else {
            return Ok(None);
        };
        let metadata = v
            .get("metadatas")
            .and_then(Value::as_array)
            .and_then(|m| m.get(at))
            .ok_or(StoreError::Malformed)?;
        let (sealed, expires_at) = entry_of(metadata)?;
        Ok(Some(Found { sealed, expires_at }))
    }

    fn put_call(&self, collection: &str, record: &Record<'_>) -> StoreCall {
        let sealed = base64::engine::general_purpose::STANDARD.encode(record.sealed);
        let mut metadata = serde_json::Map::new();
        metadata.insert("sealed".into(), json!(sealed));
        metadata.insert("expires_at".into(), json!(record.expires_at));
        metadata.insert("ns".into(), json!(record.namespace));
        let vector: &[f32] = match record.vector {
            Some((vector, context)) => {
                metadata.insert("ctx".into(), json!(context));
                vector
            }
            None => &EXACT_VECTOR,
        };
        self.call(
            collection,
            "upsert",
            &json!({"ids": [record.id], "embeddings": [vector], "metadatas": [metadata]}),
        )
    }

    fn put_answer(&self, status: &str, body: &[u8]) -> Result<(), StoreError> {
        parse(status, body).map(|_| ())
    }

    fn query_call(
        &self,
        collection: &str,
        vector: &[f32],
        context: &str,
        namespace: &str,
        k: u32,
        now: u64,
    ) -> StoreCall {
        self.call(
            collection,
            "query",
            &json!({
                "query_embeddings": [vector],
                "n_results": k,
                "where": {"$and": [
                    {"ns": {"$eq": namespace}},
                    {"ctx": {"$eq": context}},
                    {"expires_at": {"$gt": now}},
                ]},
                "include": ["metadatas", "distances", "embeddings"],
            }),
        )
    }

    fn query_answer(&self, status: &str, body: &[u8]) -> Result<Vec<Neighbour>, StoreError> {
        let v = parse(status, body)?;
        // One list per query embedding; the filter sends one.
        let first = |field: &str| {
            v.get(field)
                .and_then(Value::as_array)
                .and_then(|lists| lists.first())
                .and_then(Value::as_array)
                .ok_or(StoreError::Malformed)
        };
        let ids = first("ids")?;
        let metadatas = first("metadatas")?;
        let distances = first("distances")?;
        if metadatas.len() != ids.len() || distances.len() != ids.len() {
            return Err(StoreError::Malformed);
        }
        // Vectors are optional: a neighbour without one is still served (not indexed).
        let vectors = first("embeddings").ok();
        let vector_at = |at: usize| {
            let values = vectors?.get(at)?.as_array()?;
            values
                .iter()
                .map(|x| x.as_f64().map(|f| f as f32))
                .collect::<Option<Vec<f32>>>()
        };
        let mut found = Vec::with_capacity(ids.len());
        for (at, ((id, metadata), distance)) in ids.iter().zip(metadatas).zip(distances).enumerate()
        {
            let (sealed, expires_at) = entry_of(metadata)?;
            found.push(Neighbour {
                id: id.as_str().ok_or(StoreError::Malformed)?.to_string(),
                distance: distance.as_f64().ok_or(StoreError::Malformed)?,
                sealed,
                expires_at,
                vector: vector_at(at),
            });
        }
        Ok(found)
    }
}
