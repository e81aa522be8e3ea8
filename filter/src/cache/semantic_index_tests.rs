use super::*;
use crate::quota::MemoryStore;

fn item(entry: u8, created: u64, ttl: u64, vector: &[f32]) -> Item {
    Item {
        created,
        expires: created + ttl,
        entry: [entry; 32],
        vector: vector.to_vec(),
    }
}

fn context(n: u8) -> [u8; 32] {
    let mut c = [0u8; 32];
    c[0] = n;
    c[8] = n;
    c[12] = n.wrapping_mul(3);
    c
}

#[test]
fn buckets_round_trip_as_f32_little_endian_and_garbage_is_refused() {
    let b = Bucket {
        context: context(1),
        items: vec![item(1, 100, 10, &[1.0, -0.5]), item(2, 101, 10, &[0.25])],
    };
    let bytes = b.encode();
    assert_eq!(&bytes[..4], b"GWS1");
    // 38 bytes of header, then per item 50 bytes and 4 a dimension.
    assert_eq!(bytes.len(), 38 + (50 + 8) + (50 + 4));
    // The first vector's first number, 1.0f32, is 0x3f800000 little-endian.
    assert_eq!(&bytes[38 + 50..38 + 54], &[0x00, 0x00, 0x80, 0x3f]);
    assert_eq!(Bucket::decode(&bytes), Some(b));
    for cut in 0..bytes.len() {
        assert_eq!(Bucket::decode(&bytes[..cut]), None, "cut at {cut}");
    }
    let mut longer = bytes.clone();
    longer.push(0);
    assert_eq!(Bucket::decode(&longer), None);
    assert_eq!(Bucket::decode(b""), None);
}

#[test]
fn the_best_live_item_is_found() {
    let b = Bucket {
        context: context(1),
        items: vec![
            item(1, 100, 10, &[1.0, 0.0]),
            item(2, 100, 10, &[0.6, 0.8]),
            item(3, 100, 1, &[0.0, 1.0]),       // expired at 101
            item(4, 100, 10, &[1.0, 0.0, 0.0]), // another model's length
        ],
    };
    let (similarity, best) = b.best(&[0.0, 1.0], 105).unwrap();
    assert_eq!(best.entry, [2; 32]);
    assert!((similarity - 0.8).abs() < 1e-6);
    let (_, still) = b.best(&[0.0, 1.0], 100).unwrap();
    assert_eq!(still.entry, [3; 32], "not expired yet");
    assert!(b.best(&[0.0, 1.0], 200).is_none());
}

#[test]
fn a_full_bucket_replaces_the_same_entry_then_expired_then_oldest() {
    let mut b = Bucket {
        context: context(1),
        items: Vec::new(),
    };
    b.insert(item(1, 100, 100, &[1.0]), 2, 100);
    b.insert(item(2, 110, 5, &[1.0]), 2, 110);
    // The same entry again: replaced, not added.
    b.insert(item(1, 120, 100, &[2.0]), 2, 120);
    assert_eq!(b.items.len(), 2);
    assert_eq!(b.items[0].vector, vec![2.0]);
    // Full: entry 2 (expired at 115) goes first.
    b.insert(item(3, 130, 100, &[3.0]), 2, 130);
    let entries: Vec<u8> = b.items.iter().map(|i| i.entry[0]).collect();
    assert_eq!(entries, vec![1, 3]);
    // Full, nothing expired: the oldest (entry 1, created 120) goes.
    b.insert(item(4, 140, 100, &[4.0]), 2, 140);
    let entries: Vec<u8> = b.items.iter().map(|i| i.entry[0]).collect();
    assert_eq!(entries, vec![4, 3]);
}

#[test]
fn the_index_keeps_each_context_apart_within_its_bounds() {
    let store = MemoryStore::new();
    let index = Index {
        store: &store,
        slots: 64,
        bucket_entries: 2,
    };
    index
        .add(&context(1), item(1, 100, 50, &[1.0, 0.0]), 100)
        .unwrap();
    index
        .add(&context(1), item(2, 101, 50, &[0.0, 1.0]), 101)
        .unwrap();
    index
        .add(&context(1), item(3, 102, 50, &[0.6, 0.8]), 102)
        .unwrap();
    index
        .add(&context(2), item(9, 102, 50, &[1.0, 0.0]), 102)
        .unwrap();
    let one = index.bucket(&context(1)).unwrap().unwrap();
    let entries: Vec<u8> = one.items.iter().map(|i| i.entry[0]).collect();
    assert_eq!(
        entries,
        vec![3, 2],
        "two entries at most, the oldest replaced"
    );
    let two = index.bucket(&context(2)).unwrap().unwrap();
    assert_eq!(two.items.len(), 1);
    assert_eq!(index.bucket(&context(3)).unwrap(), None);
}

#[test]
fn with_both_slots_taken_the_bucket_written_longest_ago_goes() {
    let store = MemoryStore::new();
    // One slot: every context shares it.
    let index = Index {
        store: &store,
        slots: 1,
        bucket_entries: 4,
    };
    index
        .add(&context(1), item(1, 100, 50, &[1.0]), 100)
        .unwrap();
    index
        .add(&context(2), item(2, 110, 50, &[1.0]), 110)
        .unwrap();
    assert_eq!(index.bucket(&context(1)).unwrap(), None);
    assert_eq!(
        index.bucket(&context(2)).unwrap().map(|b| b.items.len()),
        Some(1)
    );
    // Expired items are dropped when their bucket is written.
    index
        .add(&context(2), item(3, 170, 50, &[1.0]), 170)
        .unwrap();
    let b = index.bucket(&context(2)).unwrap().unwrap();
    assert_eq!(
        b.items.iter().map(|i| i.entry[0]).collect::<Vec<_>>(),
        vec![3]
    );
    // Only `gw.sem.0` was ever written: the number of keys is bounded by the slots.
    assert!(store.get("gw.sem.1").unwrap().is_none());
}
