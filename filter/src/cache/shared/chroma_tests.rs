//! The Chroma codec against its published API (`filter/testdata/chroma/README.md` names the
//! references: the OpenAPI document `chroma run` serves, and the where-filter docs).

use base64::Engine;
use serde_json::{json, Value};

use super::chroma::Chroma;
use super::{Found, Neighbour, Record, StoreError, VectorStore};

const UUID: &str = "178cecc5-9217-4806-9b17-9322504895bf";

fn chroma() -> Chroma {
    Chroma {
        tenant: "default_tenant".into(),
        database: "default_database".into(),
        collection: "gw_cache".into(),
    }
}

fn body(call: &super::StoreCall) -> Value {
    serde_json::from_slice(&call.body).unwrap()
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[test]
fn the_collection_is_created_or_found_by_name() {
    let call = chroma().collection_call();
    assert_eq!(
        call.path,
        "/api/v2/tenants/default_tenant/databases/default_database/collections"
    );
    assert_eq!(
        body(&call),
        json!({"name": "gw_cache", "get_or_create": true,
               "configuration": {"hnsw": {"space": "cosine"}}})
    );
    // A `Collection` (OpenAPI: id, name, configuration_json, tenant, database, ...).
    let answer = json!({"id": UUID, "name": "gw_cache", "configuration_json": {},
        "tenant": "default_tenant", "database": "default_database", "log_position": 0,
        "version": 0, "metadata": null, "dimension": null});
    let read = chroma().collection_answer("200", answer.to_string().as_bytes());
    assert_eq!(read, Ok(UUID.to_string()));
    // Anything that could change a path is refused.
    let evil = json!({"id": "../../x"}).to_string();
    assert_eq!(
        chroma().collection_answer("200", evil.as_bytes()),
        Err(StoreError::Malformed)
    );
    assert_eq!(
        chroma().collection_answer("500", b"{}"),
        Err(StoreError::Status("500".into()))
    );
}

#[test]
fn an_entry_is_read_by_id_with_its_metadata() {
    let call = chroma().get_call(UUID, "abc");
    assert_eq!(
        call.path,
        format!("/api/v2/tenants/default_tenant/databases/default_database/collections/{UUID}/get")
    );
    assert_eq!(
        body(&call),
        json!({"ids": ["abc"], "include": ["metadatas"]})
    );
    // A `GetResponse`: the arrays index the same records.
    let answer = json!({"ids": ["abc"], "embeddings": null, "documents": null, "uris": null,
        "metadatas": [{"sealed": b64(b"GWS1sealed"), "expires_at": 1_780_000_300u64, "ns": "n"}],
        "include": ["metadatas"]});
    let found = chroma().get_answer("abc", "200", answer.to_string().as_bytes());
    assert_eq!(
        found,
        Ok(Some(Found {
            sealed: b"GWS1sealed".to_vec(),
            expires_at: 1_780_000_300
        }))
    );
    let none = json!({"ids": [], "metadatas": [], "include": ["metadatas"]}).to_string();
    assert_eq!(chroma().get_answer("abc", "200", none.as_bytes()), Ok(None));
    // Another id than the one asked is not this entry.
    let other = answer.to_string().replace("\"abc\"", "\"xyz\"");
    assert_eq!(
        chroma().get_answer("abc", "200", other.as_bytes()),
        Ok(None)
    );
}

#[test]
fn failures_are_told_apart() {
    let c = chroma();
    let gone = br#"{"error":"NotFoundError","message":"Collection [x] does not exist."}"#;
    assert_eq!(
        c.get_answer("a", "404", gone),
        Err(StoreError::CollectionGone)
    );
    assert_eq!(c.get_answer("a", "504", b""), Err(StoreError::TimedOut));
    assert_eq!(c.get_answer("a", "503", b""), Err(StoreError::Unreachable));
    assert_eq!(c.get_answer("a", "", b""), Err(StoreError::Unreachable));
    assert_eq!(
        c.get_answer("a", "200", b"{\"ids\":"),
        Err(StoreError::Malformed)
    );
    let unsealed = json!({"ids": ["a"], "metadatas": [{"expires_at": 5}]}).to_string();
    assert_eq!(
        c.get_answer("a", "200", unsealed.as_bytes()),
        Err(StoreError::Malformed)
    );
    let no_expiry = json!({"ids": ["a"], "metadatas": [{"sealed": b64(b"x")}]}).to_string();
    assert_eq!(
        c.get_answer("a", "200", no_expiry.as_bytes()),
        Err(StoreError::Malformed)
    );
    assert_eq!(c.put_answer("200", b"{}"), Ok(()));
    assert_eq!(
        c.put_answer("401", b"{}").map_err(|e| e.name()),
        Err("error")
    );
}

#[test]
fn entries_are_upserted_with_a_vector_and_their_metadata() {
    let exact = chroma().put_call(
        UUID,
        &Record {
            id: "abc",
            sealed: b"GWS1sealed",
            expires_at: 42,
            namespace: "nshash",
            vector: None,
        },
    );
    assert!(exact.path.ends_with(&format!("/collections/{UUID}/upsert")));
    // `UpsertCollectionRecordsPayload`: ids and embeddings required.
    assert_eq!(
        body(&exact),
        json!({"ids": ["abc"], "embeddings": [[1.0]],
               "metadatas": [{"sealed": b64(b"GWS1sealed"), "expires_at": 42, "ns": "nshash"}]})
    );
    let semantic = chroma().put_call(
        UUID,
        &Record {
            id: "abc",
            sealed: b"s",
            expires_at: 42,
            namespace: "nshash",
            vector: Some((&[0.5, -0.25], "ctxhash")),
        },
    );
    let v = body(&semantic);
    assert_eq!(v["embeddings"], json!([[0.5, -0.25]]));
    assert_eq!(v["metadatas"][0]["ctx"], "ctxhash");
}

#[test]
fn neighbours_are_searched_in_one_namespace_and_context_unexpired() {
    let call = chroma().query_call(UUID, &[0.5, 0.25], "ctxhash", "nshash", 3, 1_000);
    assert!(call.path.ends_with(&format!("/collections/{UUID}/query")));
    assert_eq!(
        body(&call),
        json!({"query_embeddings": [[0.5, 0.25]], "n_results": 3,
               "where": {"$and": [{"ns": {"$eq": "nshash"}}, {"ctx": {"$eq": "ctxhash"}},
                                  {"expires_at": {"$gt": 1000}}]},
               "include": ["metadatas", "distances", "embeddings"]})
    );
    // A `QueryResponse`: one list per query embedding.
    // With `embeddings` included (as the real server answers: one vector per neighbour, or
    // null for one it has none of).
    let answer = json!({"ids": [["a", "b"]], "embeddings": [[[0.5, 0.25], null]],
        "documents": null, "uris": null, "include": ["metadatas", "distances", "embeddings"],
        "metadatas": [[{"sealed": b64(b"A"), "expires_at": 2000, "ns": "nshash", "ctx": "ctxhash"},
                       {"sealed": b64(b"B"), "expires_at": 3000, "ns": "nshash", "ctx": "ctxhash"}]],
        "distances": [[0.0625, 0.5]]});
    let found = chroma().query_answer("200", answer.to_string().as_bytes());
    assert_eq!(
        found,
        Ok(vec![
            Neighbour {
                id: "a".into(),
                distance: 0.0625,
                sealed: b"A".to_vec(),
                expires_at: 2000,
                vector: Some(vec![0.5, 0.25]),
            },
            Neighbour {
                id: "b".into(),
                distance: 0.5,
                sealed: b"B".to_vec(),
                expires_at: 3000,
                vector: None,
            },
        ])
    );
    let empty = json!({"ids": [[]], "metadatas": [[]], "distances": [[]]}).to_string();
    assert_eq!(chroma().query_answer("200", empty.as_bytes()), Ok(vec![]));
    // A server that leaves the vectors out: neighbours without them.
    let bare = json!({"ids": [["a"]], "distances": [[0.1]],
        "metadatas": [[{"sealed": b64(b"A"), "expires_at": 2000}]]})
    .to_string();
    let found = chroma().query_answer("200", bare.as_bytes()).unwrap();
    assert_eq!(found[0].vector, None);
    let uneven = json!({"ids": [["a"]], "metadatas": [[]], "distances": [[0.1]]}).to_string();
    assert_eq!(
        chroma().query_answer("200", uneven.as_bytes()),
        Err(StoreError::Malformed)
    );
}
