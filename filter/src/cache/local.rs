//! The local tier: entries in proxy-wasm shared data, which every worker of one Envoy sees.
//! Shared data only has get and compare-and-swap set: no delete, no eviction, no expiry. So the
//! tier brings its own bounds:
//!
//! - **Slots.** `slots` fixed keys `<prefix>.<n>` (`gw.cache.<n>` for the response cache; the
//!   Responses API's response store, `inbound::responses::store`, has its own prefix and budget); each holds at most one entry (or nothing:
//!   an emptied slot is an empty value). A key may live in two slots, both picked from its
//!   hash (two-choice hashing: far fewer collisions than one choice, still two reads at most).
//!   The number of shared-data keys never grows past `slots + 1`.
//! - **Expiry by timestamp.** Each entry carries its `expires` time; an expired one is never
//!   served, and the lookup that meets one empties its slot (a CAS write, so an entry another
//!   worker just wrote there is left alone).
//! - **Replacement.** A store goes to the slot already holding its key, else an empty or
//!   expired one, else it replaces the older of the two (by creation time: oldest first out).
//! - **Byte budget.** A counter `<prefix>.bytes` holds the bytes of all stored values; a store
//!   that would take it past `max_bytes` is refused (counted, the answer is simply not cached).
//!   The counter is moved with CAS before the slot is written and given back if the write
//!   loses a race, so it never under-counts; at worst it over-counts an entry that was
//!   replaced between the read and the write, until that slot is written again.
//!
//! Memory: at most `max_bytes` of entries plus about 60 bytes of key and bookkeeping per slot.

use super::entry::Entry;
use crate::quota::{SharedStore, StoreError};

/// The response cache's names.
pub const CACHE_PREFIX: &str = "gw.cache";

/// Why a store did not happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutError {
    /// The byte budget is used up by live entries.
    Full,
    /// Another worker wrote the slot or the counter at the same moment.
    Contended,
    /// The host refused.
    Store,
}

impl PutError {
    pub fn name(self) -> &'static str {
        match self {
            Self::Full => "full",
            Self::Contended => "contended",
            Self::Store => "store_failed",
        }
    }
}

/// The tier, over a shared store.
pub struct Local<'a> {
    pub store: &'a dyn SharedStore,
    /// The shared-data names of this tier's slots and byte counter.
    pub prefix: &'static str,
    pub slots: u32,
    pub max_bytes: u64,
}

impl Local<'_> {
    fn slot_key(&self, n: u32) -> String {
        format!("{}.{n}", self.prefix)
    }

    fn bytes_key(&self) -> String {
        format!("{}.bytes", self.prefix)
    }

    /// The two slots a key may live in.
    fn candidates(&self, key: &[u8; 32]) -> [u32; 2] {
        let word = |i: usize| {
            let mut b = [0u8; 4];
            b.copy_from_slice(key.get(i..i + 4).unwrap_or(&[0; 4]));
            u32::from_le_bytes(b)
        };
        let first = word(0) % self.slots;
        let mut second = word(4) % self.slots;
        if second == first && self.slots > 1 {
            second = (first + 1) % self.slots;
        }
        [first, second]
    }

    /// The live entry stored under `key`, if any. An expired entry met on the way is emptied.
    pub fn get(&self, key: &[u8; 32], now: u64) -> Result<Option<Entry>, StoreError> {
        for n in self.candidates(key) {
            let name = self.slot_key(n);
            let Some((bytes, cas)) = self.store.get(&name)? else {
                continue;
            };
            let Some((owner, _, expires)) = Entry::peek(&bytes) else {
                continue;
            };
            if now >= expires {
                self.empty(&name, bytes.len(), cas);
                continue;
            }
            if owner == *key {
                return Ok(Entry::decode(&bytes));
            }
        }
        Ok(None)
    }

    /// Removes the entry stored under `key`; whether there was a live one.
    pub fn remove(&self, key: &[u8; 32], now: u64) -> Result<bool, StoreError> {
        for n in self.candidates(key) {
            let name = self.slot_key(n);
            let Some((bytes, cas)) = self.store.get(&name)? else {
                continue;
            };
            if let Some((owner, _, expires)) = Entry::peek(&bytes) {
                if owner == *key {
                    self.empty(&name, bytes.len(), cas);
                    return Ok(now < expires);
                }
            }
        }
        Ok(false)
    }

    /// Empties an expired slot (best effort) and gives its bytes back.
    fn empty(&self, name: &str, len: usize, cas: u32) {
        if self.store.set(name, b"", Some(cas)).is_ok() {
            let _ = self.add_bytes(-(len as i64));
        }
    }

    /// Stores an entry (replacing what its slot held).
    pub fn put(&self, entry: &Entry, now: u64) -> Result<(), PutError> {
        let value = entry.encode();
        // (slot, bytes held now, cas, rank): the lower rank is replaced first.
        let mut best: Option<(String, usize, Option<u32>, u64)> = None;
        for n in self.candidates(&entry.key) {
            let name = self.slot_key(n);
            let current = self.store.get(&name).map_err(|_| PutError::Store)?;
            let (len, cas, rank) = match &current {
                None => (0, None, 0),
                Some((bytes, cas)) => match Entry::peek(bytes) {
                    Some((owner, _, _)) if owner == entry.key => (bytes.len(), Some(*cas), 0),
                    Some((_, _, expires)) if now >= expires => (bytes.len(), Some(*cas), 0),
                    // Older entries go first; +1 keeps empty and expired slots ahead of them.
                    Some((_, created, _)) => (bytes.len(), Some(*cas), created.saturating_add(1)),
                    None => (bytes.len(), Some(*cas), 0),
                },
            };
            if best.as_ref().is_none_or(|b| rank < b.3) {
                best = Some((name, len, cas, rank));
            }
        }
        let Some((name, old_len, cas, _)) = best else {
            return Err(PutError::Store);
        };
        let delta = value.len() as i64 - old_len as i64;
        if delta > 0 {
            self.add_bytes(delta)?;
        }
        match self.store.set(&name, &value, cas) {
            Ok(()) => {
                if delta < 0 {
                    let _ = self.add_bytes(delta);
                }
                Ok(())
            }
            Err(e) => {
                if delta > 0 {
                    let _ = self.add_bytes(-delta);
                }
                Err(match e {
                    StoreError::CasMismatch => PutError::Contended,
                    StoreError::Other => PutError::Store,
                })
            }
        }
    }

    /// Bytes of entries held now.
    pub fn bytes(&self) -> u64 {
        self.store
            .get(&self.bytes_key())
            .ok()
            .flatten()
            .map_or(0, |(v, _)| decode_u64(&v))
    }

    /// Moves the byte counter by `delta` (never below zero); a growth that would pass the
    /// budget is refused.
    fn add_bytes(&self, delta: i64) -> Result<(), PutError> {
        for _ in 0..8 {
            let current = self
                .store
                .get(&self.bytes_key())
                .map_err(|_| PutError::Store)?;
            let used = current.as_ref().map_or(0, |(v, _)| decode_u64(v));
            let next = if delta < 0 {
                used.saturating_sub(delta.unsigned_abs())
            } else {
                used.saturating_add(delta.unsigned_abs())
            };
            if delta > 0 && next > self.max_bytes {
                return Err(PutError::Full);
            }
            match self.store.set(
                &self.bytes_key(),
                &next.to_le_bytes(),
                current.map(|(_, c)| c),
            ) {
                Ok(()) => return Ok(()),
                Err(StoreError::CasMismatch) => continue,
                Err(StoreError::Other) => return Err(PutError::Store),
            }
        }
        Err(PutError::Contended)
    }
}

fn decode_u64(v: &[u8]) -> u64 {
    v.try_into().map_or(0, u64::from_le_bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quota::MemoryStore;

    fn entry(k: u8, created: u64, ttl: u64, body_len: usize) -> Entry {
        let mut key = [0u8; 32];
        key[0] = k;
        key[4] = k.wrapping_mul(7);
        Entry {
            key,
            created,
            expires: created + ttl,
            provider: "p".into(),
            upstream_model: "m".into(),
            body: vec![b'x'; body_len],
        }
    }

    fn tier(store: &MemoryStore, slots: u32, max_bytes: u64) -> Local<'_> {
        Local {
            store,
            prefix: CACHE_PREFIX,
            slots,
            max_bytes,
        }
    }

    #[test]
    fn stored_entries_are_found_until_they_expire() {
        let store = MemoryStore::new();
        let tier = tier(&store, 64, 1 << 20);
        let e = entry(1, 100, 10, 50);
        tier.put(&e, 100).unwrap();
        assert_eq!(tier.get(&e.key, 109).unwrap(), Some(e.clone()));
        assert_eq!(tier.get(&entry(2, 100, 10, 1).key, 101).unwrap(), None);
        let held = tier.bytes();
        assert_eq!(held, e.encode().len() as u64);
        // Expired: not served, and its slot is emptied and its bytes given back.
        assert_eq!(tier.get(&e.key, 110).unwrap(), None);
        assert_eq!(tier.bytes(), 0);
    }

    #[test]
    fn the_byte_budget_refuses_stores_past_it_and_replacing_frees_bytes() {
        let store = MemoryStore::new();
        let one = entry(1, 100, 10, 100).encode().len() as u64;
        let tier = tier(&store, 64, one * 2);
        tier.put(&entry(1, 100, 10, 100), 100).unwrap();
        tier.put(&entry(2, 100, 10, 100), 100).unwrap();
        assert_eq!(tier.put(&entry(3, 100, 10, 100), 100), Err(PutError::Full));
        // The same key again replaces its own entry: no more bytes.
        tier.put(&entry(1, 101, 10, 100), 101).unwrap();
        assert_eq!(tier.bytes(), one * 2);
        // A smaller answer under the same key gives bytes back.
        tier.put(&entry(1, 102, 10, 10), 102).unwrap();
        assert!(tier.bytes() < one * 2);
    }

    #[test]
    fn with_both_slots_taken_the_oldest_entry_goes() {
        let store = MemoryStore::new();
        // One slot: every key shares it.
        let tier = tier(&store, 1, 1 << 20);
        let old = entry(1, 100, 100, 5);
        let new = entry(2, 150, 100, 5);
        tier.put(&old, 100).unwrap();
        tier.put(&new, 150).unwrap();
        assert_eq!(tier.get(&old.key, 151).unwrap(), None);
        assert_eq!(tier.get(&new.key, 151).unwrap(), Some(new));
        assert_eq!(
            store
                .get("gw.cache.0")
                .unwrap()
                .map(|(v, _)| Entry::peek(&v).map(|p| p.1)),
            Some(Some(150))
        );
    }

    #[test]
    fn a_removed_entry_is_gone_and_its_bytes_given_back() {
        let store = MemoryStore::new();
        let tier = tier(&store, 64, 1 << 20);
        let e = entry(1, 100, 10, 50);
        tier.put(&e, 100).unwrap();
        assert_eq!(tier.remove(&e.key, 101), Ok(true));
        assert_eq!(tier.get(&e.key, 101).unwrap(), None);
        assert_eq!(tier.bytes(), 0);
        assert_eq!(tier.remove(&e.key, 101), Ok(false));
    }

    #[test]
    fn tiers_with_other_prefixes_do_not_see_each_other() {
        let store = MemoryStore::new();
        let tier = |prefix| Local {
            store: &store,
            prefix,
            slots: 8,
            max_bytes: 1 << 20,
        };
        let e = entry(1, 100, 10, 5);
        tier(CACHE_PREFIX).put(&e, 100).unwrap();
        assert_eq!(tier("gw.other").get(&e.key, 101).unwrap(), None);
        assert_eq!(tier("gw.other").bytes(), 0);
        assert!(store.get("gw.cache.bytes").unwrap().is_some());
    }

    #[test]
    fn keys_spread_over_at_most_two_slots() {
        let tier = Local {
            store: &MemoryStore::new(),
            prefix: CACHE_PREFIX,
            slots: 8,
            max_bytes: 1,
        };
        for k in 0..=255u8 {
            let [a, b] = tier.candidates(&entry(k, 0, 1, 0).key);
            assert!(a < 8 && b < 8 && a != b);
        }
    }
}
