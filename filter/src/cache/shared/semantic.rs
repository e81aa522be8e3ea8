//! The semantic entries of the shared tier: which neighbour a store's query answer serves.
//! A semantic record lives in the tier's vector collection under the exact entry's id, with the
//! same sealed entry (so one query brings what to serve, no second round trip), its vector, the
//! context hash and the namespace hash. The collection is in cosine space: a neighbour's
//! similarity is `1 - distance`.

use super::seal::{self, SealKey};
use super::Neighbour;
use crate::cache::entry::Entry;

/// Neighbours asked per query: the nearest usually decides; a few more survive an expired or
/// unopenable nearest one.
pub const NEIGHBOURS: u32 = 3;

/// Why no neighbour is served: the `outcome` label of the stat.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoNeighbour {
    /// Nothing in this namespace and context.
    Empty,
    /// The nearest is below the threshold.
    BelowThreshold,
    /// Near enough, but expired, too old for `max-age`, or not opened under this key.
    Unusable,
}

impl NoNeighbour {
    pub fn name(self) -> &'static str {
        match self {
            Self::Empty => "miss",
            Self::BelowThreshold => "below_threshold",
            Self::Unusable => "unusable",
        }
    }
}

/// The cosine similarity of a neighbour of a cosine-space collection.
pub fn similarity(distance: f64) -> f32 {
    (1.0 - distance) as f32
}

/// The exact key whose hex is `id`.
fn key_of(id: &str) -> Option<[u8; 32]> {
    let bytes = id.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let mut key = [0u8; 32];
    for (out, pair) in key.iter_mut().zip(bytes.chunks_exact(2)) {
        let text = std::str::from_utf8(pair).ok()?;
        *out = u8::from_str_radix(text, 16).ok()?;
    }
    Some(key)
}

/// A neighbour to serve.
#[derive(Debug, Clone, PartialEq)]
pub struct Served {
    pub similarity: f32,
    pub entry: Entry,
    /// Its own vector, when the store sent it (for this Envoy's index).
    pub vector: Option<Vec<f32>>,
}

/// The nearest neighbour at or above `threshold` that opens under `key`, is unexpired at `now`
/// and no older than `max_age`.
pub fn serve(
    key: &SealKey,
    mut neighbours: Vec<Neighbour>,
    threshold: f32,
    now: u64,
    max_age: Option<u64>,
) -> Result<Served, NoNeighbour> {
    if neighbours.is_empty() {
        return Err(NoNeighbour::Empty);
    }
    neighbours.sort_by(|a, b| a.distance.total_cmp(&b.distance));
    let mut near_enough = false;
    for n in neighbours {
        let similarity = similarity(n.distance);
        // Sorted: the rest are farther. A NaN is never near enough.
        if similarity.is_nan() || similarity < threshold {
            break;
        }
        near_enough = true;
        if n.expires_at <= now {
            continue;
        }
        let Some(id) = key_of(&n.id) else { continue };
        // Bound to its id: an entry moved under another id does not open.
        let Some(plain) = seal::open(key, &id, &n.sealed) else {
            continue;
        };
        let Some(entry) = Entry::decode(&plain).filter(|e| e.key == id) else {
            continue;
        };
        if entry.expires <= now
            || max_age.is_some_and(|max| now.saturating_sub(entry.created) > max)
        {
            continue;
        }
        return Ok(Served {
            similarity: similarity.min(1.0),
            entry,
            vector: n.vector,
        });
    }
    Err(if near_enough {
        NoNeighbour::Unusable
    } else {
        NoNeighbour::BelowThreshold
    })
}

#[cfg(test)]
mod tests {
    use base64::Engine;

    use super::*;

    fn key(byte: u8) -> SealKey {
        SealKey::parse(&base64::engine::general_purpose::STANDARD.encode([byte; 32])).unwrap()
    }

    fn entry(id: u8, expires: u64) -> Entry {
        Entry {
            key: [id; 32],
            created: 100,
            expires,
            provider: "p".into(),
            upstream_model: "m".into(),
            body: format!("answer {id}").into_bytes(),
        }
    }

    fn neighbour(e: &Entry, distance: f64, sealed_under: &SealKey) -> Neighbour {
        Neighbour {
            id: crate::sha256::hex(&e.key),
            distance,
            sealed: seal::seal(sealed_under, &e.key, [7; 12], &e.encode()).unwrap(),
            expires_at: e.expires,
            vector: Some(vec![f32::from(e.key[0]), 1.0]),
        }
    }

    fn served(similarity: f32, e: &Entry) -> Result<Served, NoNeighbour> {
        Ok(Served {
            similarity,
            entry: e.clone(),
            vector: Some(vec![f32::from(e.key[0]), 1.0]),
        })
    }

    #[test]
    fn the_nearest_usable_neighbour_at_the_threshold_is_served() {
        let k = key(1);
        let (near, far) = (entry(1, 1_000), entry(2, 1_000));
        // Chroma's answer is sorted, but the choice does not rely on it.
        let found = serve(
            &k,
            vec![neighbour(&far, 0.25, &k), neighbour(&near, 0.125, &k)],
            0.75,
            200,
            None,
        );
        assert_eq!(found, served(0.875, &near));
        // Exactly at the threshold: served (similarity >= threshold).
        assert_eq!(
            serve(&k, vec![neighbour(&far, 0.25, &k)], 0.75, 200, None),
            served(0.75, &far)
        );
        assert_eq!(
            serve(&k, vec![neighbour(&far, 0.25, &k)], 0.76, 200, None),
            Err(NoNeighbour::BelowThreshold)
        );
        assert_eq!(serve(&k, vec![], 0.5, 200, None), Err(NoNeighbour::Empty));
    }

    #[test]
    fn an_unusable_nearest_gives_way_to_the_next() {
        let k = key(1);
        let expired = entry(1, 150);
        let other_key = entry(2, 1_000);
        let good = entry(3, 1_000);
        let found = serve(
            &k,
            vec![
                neighbour(&expired, 0.0, &k),
                neighbour(&other_key, 0.01, &key(2)),
                neighbour(&good, 0.02, &k),
            ],
            0.9,
            200,
            None,
        );
        assert_eq!(found, served(0.98, &good));
        // An entry moved under another id does not open.
        let mut moved = neighbour(&good, 0.0, &k);
        moved.id = crate::sha256::hex(&[9u8; 32]);
        assert_eq!(
            serve(&k, vec![moved], 0.9, 200, None),
            Err(NoNeighbour::Unusable)
        );
        // Older than the client's max-age (created at 100, now 200).
        assert_eq!(
            serve(&k, vec![neighbour(&good, 0.0, &k)], 0.9, 200, Some(50)),
            Err(NoNeighbour::Unusable)
        );
        let mut odd = neighbour(&good, 0.0, &k);
        odd.id = "not-hex".into();
        assert_eq!(
            serve(&k, vec![odd], 0.9, 200, None),
            Err(NoNeighbour::Unusable)
        );
        let mut nan = neighbour(&good, f64::NAN, &k);
        nan.distance = f64::NAN;
        assert_eq!(
            serve(&k, vec![nan], 0.0, 200, None),
            Err(NoNeighbour::BelowThreshold)
        );
    }
}
