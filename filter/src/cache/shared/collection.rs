//! How every worker learns the collection's handle (Chroma's is a UUID the server makes): the
//! root context of each worker ticks; while no handle is in shared data, it asks the store for
//! the collection (created on first use, found after), and writes the handle to shared data,
//! where every request of every worker reads it. Until it is known, a lookup is a miss
//! (`not_ready`) and a store is skipped. A request that finds the collection gone (the store was
//! reset) clears the handle, and the next tick looks it up again. The semantic entries'
//! collection (`vector_collection`) has a keeper and a handle of its own.

use super::{StoreCall, StoreError, VectorStore};
use crate::quota::SharedStore;

/// The shared-data key of the handle.
pub const HANDLE_KEY: &str = "gw.cache.shared.collection";

/// The shared-data key of the semantic entries' collection's handle.
pub const VECTORS_HANDLE_KEY: &str = "gw.cache.shared.vectors";

/// A lookup that got no answer in this many seconds may be sent again.
const RETRY_SECS: u64 = 5;

/// The handle every request uses; `None` until a root context learned it.
pub fn handle(shared: &dyn SharedStore) -> Option<String> {
    handle_at(shared, HANDLE_KEY)
}

/// The handle kept under `key` ([`HANDLE_KEY`] or [`VECTORS_HANDLE_KEY`]).
pub fn handle_at(shared: &dyn SharedStore, key: &str) -> Option<String> {
    let (bytes, _) = shared.get(key).ok()??;
    let handle = String::from_utf8(bytes).ok()?;
    (!handle.is_empty()).then_some(handle)
}

/// A request found the collection gone: the handle is cleared (unless another request already
/// replaced it) so the next tick looks the collection up again.
pub fn forget(shared: &dyn SharedStore, gone: &str) {
    forget_at(shared, HANDLE_KEY, gone);
}

/// [`forget`] for the handle kept under `key`.
pub fn forget_at(shared: &dyn SharedStore, key: &str, gone: &str) {
    if let Ok(Some((bytes, cas))) = shared.get(key) {
        if bytes == gone.as_bytes() {
            let _ = shared.set(key, b"", Some(cas));
        }
    }
}

/// One worker's root context: whether its lookup is out, and whether its last failure was
/// logged (a store that stays down is logged once, not every tick).
#[derive(Debug)]
pub struct Keeper {
    /// Where the handle is kept in shared data.
    handle_key: &'static str,
    asked_at: Option<u64>,
    /// The lookup's callout, to tell its answer from another keeper's.
    pub token: Option<u32>,
    failure_logged: bool,
}

impl Default for Keeper {
    fn default() -> Self {
        Self::new(HANDLE_KEY)
    }
}

impl Keeper {
    /// The keeper of the handle under `handle_key`.
    pub fn new(handle_key: &'static str) -> Self {
        Self {
            handle_key,
            asked_at: None,
            token: None,
            failure_logged: false,
        }
    }

    /// On each tick: the lookup to send, if the handle is unknown and no lookup is out.
    pub fn on_tick(
        &mut self,
        store: &dyn VectorStore,
        shared: &dyn SharedStore,
        now: u64,
    ) -> Option<StoreCall> {
        if handle_at(shared, self.handle_key).is_some() {
            return None;
        }
        if self
            .asked_at
            .is_some_and(|at| now.saturating_sub(at) < RETRY_SECS)
        {
            return None;
        }
        self.asked_at = Some(now);
        Some(store.collection_call())
    }

    /// The lookup could not be sent.
    pub fn not_sent(&mut self, reason: &str) {
        self.asked_at = None;
        self.token = None;
        if !std::mem::replace(&mut self.failure_logged, true) {
            log::warn!("cache shared tier: the collection lookup could not start ({reason}); shared lookups are misses until it succeeds (logged once)");
        }
    }

    /// The lookup's answer: the handle, written to shared data.
    pub fn on_answer(
        &mut self,
        store: &dyn VectorStore,
        shared: &dyn SharedStore,
        status: &str,
        body: &[u8],
    ) -> Result<String, StoreError> {
        self.asked_at = None;
        self.token = None;
        let key = self.handle_key;
        match store.collection_answer(status, body) {
            Ok(handle) => {
                let written = match shared.get(key) {
                    Ok(Some((_, cas))) => shared.set(key, handle.as_bytes(), Some(cas)),
                    _ => shared.set(key, handle.as_bytes(), None),
                };
                if written.is_ok() {
                    self.failure_logged = false;
                    log::info!("cache shared tier: collection ready ({handle})");
                }
                Ok(handle)
            }
            Err(e) => {
                if !std::mem::replace(&mut self.failure_logged, true) {
                    log::warn!("cache shared tier: the collection lookup failed ({e}); shared lookups are misses until it succeeds (logged once)");
                }
                Err(e)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::collections::HashMap;

    use super::*;
    use crate::cache::shared::chroma::Chroma;
    use crate::quota::StoreError as SharedError;

    #[derive(Default)]
    struct Shared(RefCell<HashMap<String, (Vec<u8>, u32)>>);

    impl SharedStore for Shared {
        fn get(&self, key: &str) -> Result<Option<(Vec<u8>, u32)>, SharedError> {
            Ok(self.0.borrow().get(key).cloned())
        }
        fn set(&self, key: &str, value: &[u8], cas: Option<u32>) -> Result<(), SharedError> {
            let mut map = self.0.borrow_mut();
            let next = match (map.get(key), cas) {
                (Some((_, have)), Some(want)) if *have != want => {
                    return Err(SharedError::CasMismatch)
                }
                (Some((_, have)), _) => have + 1,
                (None, _) => 1,
            };
            map.insert(key.into(), (value.to_vec(), next));
            Ok(())
        }
    }

    fn chroma() -> Chroma {
        Chroma {
            tenant: "default_tenant".into(),
            database: "default_database".into(),
            collection: "gw_cache".into(),
        }
    }

    const UUID: &str = "178cecc5-9217-4806-9b17-9322504895bf";

    #[test]
    fn the_handle_is_looked_up_until_known_and_again_when_gone() {
        let (store, shared) = (chroma(), Shared::default());
        let mut keeper = Keeper::default();
        let call = keeper.on_tick(&store, &shared, 100).unwrap();
        assert!(call.path.ends_with("/collections"), "{}", call.path);
        assert_eq!(keeper.on_tick(&store, &shared, 101), None, "one lookup out");
        // Unanswered for the retry time: asked again.
        assert!(keeper.on_tick(&store, &shared, 105).is_some());
        let failed = keeper.on_answer(&store, &shared, "503", b"");
        assert_eq!(failed, Err(StoreError::Unreachable));
        assert_eq!(handle(&shared), None);
        assert!(
            keeper.on_tick(&store, &shared, 106).is_some(),
            "a failure is retried"
        );
        let answer = format!(r#"{{"id":"{UUID}","name":"gw_cache"}}"#);
        assert_eq!(
            keeper.on_answer(&store, &shared, "200", answer.as_bytes()),
            Ok(UUID.to_string())
        );
        assert_eq!(handle(&shared).as_deref(), Some(UUID));
        assert_eq!(
            keeper.on_tick(&store, &shared, 200),
            None,
            "known: nothing to ask"
        );
        forget(&shared, "another-handle");
        assert_eq!(
            handle(&shared).as_deref(),
            Some(UUID),
            "only the gone handle is cleared"
        );
        forget(&shared, UUID);
        assert_eq!(handle(&shared), None);
        assert!(keeper.on_tick(&store, &shared, 201).is_some());
    }

    #[test]
    fn the_vectors_handle_is_kept_apart() {
        let shared = Shared::default();
        let vectors = Chroma {
            collection: "gw_cache_vectors".into(),
            ..chroma()
        };
        let mut exact = Keeper::default();
        let mut semantic = Keeper::new(VECTORS_HANDLE_KEY);
        let answer = format!(r#"{{"id":"{UUID}","name":"gw_cache_vectors"}}"#);
        let call = semantic.on_tick(&vectors, &shared, 100).unwrap();
        assert!(call.body.windows(16).any(|w| w == b"gw_cache_vectors"));
        assert!(semantic
            .on_answer(&vectors, &shared, "200", answer.as_bytes())
            .is_ok());
        assert_eq!(
            handle_at(&shared, VECTORS_HANDLE_KEY).as_deref(),
            Some(UUID)
        );
        assert_eq!(handle(&shared), None, "the exact handle is still unknown");
        assert!(exact.on_tick(&chroma(), &shared, 100).is_some());
        forget_at(&shared, VECTORS_HANDLE_KEY, UUID);
        assert_eq!(handle_at(&shared, VECTORS_HANDLE_KEY), None);
    }
}
