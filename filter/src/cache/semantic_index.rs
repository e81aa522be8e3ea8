//! The semantic index of the local tier, in proxy-wasm shared data next to the exact entries:
//! per context hash (which holds the namespace: another team's requests have other buckets) a
//! bucket of at most `bucket_entries` items, each the vector of a stored request's compared
//! text and the exact key of its entry (the answer itself stays in the exact tier, once).
//!
//! Bounds, as in `local.rs` (shared data has no delete, eviction or expiry):
//! - **Slots.** `slots` fixed keys `gw.sem.<n>`; a bucket may live in one of two slots picked
//!   from its context hash. A new bucket takes an empty slot, else one whose items all
//!   expired, else the one written longest ago.
//! - **Bucket.** An item added to a full bucket replaces its expired items first, else its
//!   oldest; an item for the same exact key replaces that one.
//! - **Bytes.** Each vector has at most `max_dimensions` f32 (little-endian), so the index
//!   holds at most `slots x (bucket_entries x (4 x max_dimensions + 50) + 38)` bytes, checked
//!   at start (`IndexBounds::max_index_bytes`). A 1536-dimension vector is 6 KiB.
//!
//! Value of a slot:
//! ```text
//! "GWS1" | context (32) | count (u16 LE)
//!        | count x [created (u64 LE) | expires (u64 LE) | entry key (32) | dims (u16 LE) | dims x f32 LE]
//! ```

use super::entry::Reader;
use super::semantic::cosine;
use crate::quota::{SharedStore, StoreError};

const MAGIC: &[u8; 4] = b"GWS1";
/// Bytes of a bucket before its items.
pub const BUCKET_HEADER: usize = 4 + 32 + 2;
/// Bytes of an item before its vector.
pub const ITEM_HEADER: usize = 8 + 8 + 32 + 2;
/// Compare-and-swap retries of one write.
const WRITE_TRIES: usize = 4;

/// One stored request's vector and the exact entry it points to.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    pub created: u64,
    pub expires: u64,
    pub entry: [u8; 32],
    pub vector: Vec<f32>,
}

/// The items of one context.
#[derive(Debug, Clone, PartialEq)]
pub struct Bucket {
    pub context: [u8; 32],
    pub items: Vec<Item>,
}

impl Bucket {
    pub fn encode(&self) -> Vec<u8> {
        let size = BUCKET_HEADER
            + self
                .items
                .iter()
                .map(|i| ITEM_HEADER + 4 * i.vector.len())
                .sum::<usize>();
        let mut out = Vec::with_capacity(size);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&self.context);
        out.extend_from_slice(&(self.items.len().min(usize::from(u16::MAX)) as u16).to_le_bytes());
        for item in self.items.iter().take(usize::from(u16::MAX)) {
            out.extend_from_slice(&item.created.to_le_bytes());
            out.extend_from_slice(&item.expires.to_le_bytes());
            out.extend_from_slice(&item.entry);
            let dims = item.vector.len().min(usize::from(u16::MAX));
            out.extend_from_slice(&(dims as u16).to_le_bytes());
            for x in item.vector.iter().take(dims) {
                out.extend_from_slice(&x.to_le_bytes());
            }
        }
        out
    }

    /// `None` for anything that is not a whole bucket (an empty slot, another format).
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        let mut r = Reader(bytes);
        if r.take(4)? != MAGIC {
            return None;
        }
        let context: [u8; 32] = r.take(32)?.try_into().ok()?;
        let count = usize::from(r.u16()?);
        let mut items = Vec::with_capacity(count.min(64));
        for _ in 0..count {
            let created = r.u64()?;
            let expires = r.u64()?;
            let entry: [u8; 32] = r.take(32)?.try_into().ok()?;
            let dims = usize::from(r.u16()?);
            let raw = r.take(dims.checked_mul(4)?)?;
            let vector = raw
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes(c.try_into().unwrap_or([0; 4])))
                .collect();
            items.push(Item {
                created,
                expires,
                entry,
                vector,
            });
        }
        (r.0.is_empty()).then_some(Self { context, items })
    }

    /// The live item most similar to `query`, with its similarity.
    pub fn best(&self, query: &[f32], now: u64) -> Option<(f32, &Item)> {
        self.items
            .iter()
            .filter(|i| now < i.expires)
            .filter_map(|i| Some((cosine(query, &i.vector)?, i)))
            .max_by(|a, b| a.0.total_cmp(&b.0))
    }

    /// Adds an item: over the one for the same entry, else an expired one, else the oldest
    /// when the bucket holds `cap` items.
    pub fn insert(&mut self, item: Item, cap: usize, now: u64) {
        let at = self
            .items
            .iter()
            .position(|i| i.entry == item.entry)
            .or_else(|| self.items.iter().position(|i| now >= i.expires))
            .or_else(|| {
                (self.items.len() >= cap.max(1)).then(|| {
                    self.items
                        .iter()
                        .enumerate()
                        .min_by_key(|(_, i)| i.created)
                        .map_or(0, |(n, _)| n)
                })
            });
        match at.and_then(|n| self.items.get_mut(n)) {
            Some(slot) => *slot = item,
            None => self.items.push(item),
        }
    }

    /// When it was last written to (its newest item), 0 when all items expired.
    fn freshness(&self, now: u64) -> u64 {
        self.items
            .iter()
            .filter(|i| now < i.expires)
            .map(|i| i.created.saturating_add(1))
            .max()
            .unwrap_or(0)
    }
}

/// The index over a shared store.
pub struct Index<'a> {
    pub store: &'a dyn SharedStore,
    pub slots: u32,
    pub bucket_entries: u16,
}

fn slot_key(n: u32) -> String {
    format!("gw.sem.{n}")
}

impl Index<'_> {
    /// The two slots a context may live in (from other bytes of the hash than the exact
    /// tier's, which are another hash anyway).
    fn candidates(&self, context: &[u8; 32]) -> [u32; 2] {
        let word = |i: usize| {
            let mut b = [0u8; 4];
            b.copy_from_slice(context.get(i..i + 4).unwrap_or(&[0; 4]));
            u32::from_le_bytes(b)
        };
        let slots = self.slots.max(1);
        let first = word(8) % slots;
        let mut second = word(12) % slots;
        if second == first && slots > 1 {
            second = (first + 1) % slots;
        }
        [first, second]
    }

    /// The bucket of a context, if one of its slots holds it.
    pub fn bucket(&self, context: &[u8; 32]) -> Result<Option<Bucket>, StoreError> {
        for n in self.candidates(context) {
            if let Some((bytes, _)) = self.store.get(&slot_key(n))? {
                if bytes.get(4..36) == Some(context.as_slice()) {
                    return Ok(Bucket::decode(&bytes));
                }
            }
        }
        Ok(None)
    }

    /// Adds an item to a context's bucket (creating the bucket, replacing another context's
    /// stale or oldest one).
    pub fn add(&self, context: &[u8; 32], item: Item, now: u64) -> Result<(), StoreError> {
        let mut last = StoreError::CasMismatch;
        for _ in 0..WRITE_TRIES {
            // (slot, cas, bucket to write, rank): the lowest rank is written.
            let mut best: Option<(String, Option<u32>, Bucket, u64)> = None;
            for n in self.candidates(context) {
                let name = slot_key(n);
                let current = self.store.get(&name)?;
                let held = current.as_ref().and_then(|(b, _)| Bucket::decode(b));
                let cas = current.as_ref().map(|(_, c)| *c);
                let (bucket, rank) = match held {
                    Some(b) if b.context == *context => (b, 0),
                    Some(b) => {
                        let fresh = b.freshness(now);
                        (empty(context), fresh)
                    }
                    None => (empty(context), 0),
                };
                let own = bucket.context == *context && !bucket.items.is_empty();
                // Its own bucket first, then empty or stale slots, then the longest unwritten.
                let rank = if own { 0 } else { rank.saturating_add(1) };
                if best.as_ref().is_none_or(|b| rank < b.3) {
                    best = Some((name, cas, bucket, rank));
                }
            }
            let Some((name, cas, mut bucket, _)) = best else {
                return Err(StoreError::Other);
            };
            bucket.insert(item.clone(), usize::from(self.bucket_entries), now);
            bucket.items.retain(|i| now < i.expires);
            match self.store.set(&name, &bucket.encode(), cas) {
                Ok(()) => return Ok(()),
                Err(e) => last = e,
            }
            if last == StoreError::Other {
                break;
            }
        }
        Err(last)
    }
}

fn empty(context: &[u8; 32]) -> Bucket {
    Bucket {
        context: *context,
        items: Vec::new(),
    }
}

#[cfg(test)]
#[path = "semantic_index_tests.rs"]
mod tests;
