//! The key-value store on both backends: versions, expectations, expiry and listing.

use std::sync::Arc;

use ember_store::{KvExpect, KvPut, Store, StoreOptions};

mod common;

fn options(url: &str) -> StoreOptions {
    StoreOptions {
        url: url.to_owned(),
        pool_size: 2,
        acquire_timeout: std::time::Duration::from_secs(10),
    }
}

fn put<'a>(key: &'a str, value: &'a [u8], now: i64, expect: KvExpect) -> KvPut<'a> {
    KvPut {
        namespace: "app",
        key,
        value,
        media_type: "application/json",
        expires_at: None,
        now,
        expect,
    }
}

async fn versions_expectations_expiry_and_listing(store: Arc<dyn Store>) {
    let now = 1_000_000;
    assert_eq!(
        store
            .kv_put(put("a", b"1", now, KvExpect::Any))
            .await
            .unwrap(),
        Some(1)
    );
    assert_eq!(
        store
            .kv_put(put("a", b"22", now, KvExpect::Any))
            .await
            .unwrap(),
        Some(2)
    );
    let got = store.kv_get("app", "a", now).await.unwrap().unwrap();
    assert_eq!((got.value.as_slice(), got.version), (&b"22"[..], 2));
    assert_eq!(got.media_type, "application/json");
    // Create-only and compare-and-swap.
    assert_eq!(
        store
            .kv_put(put("a", b"x", now, KvExpect::Absent))
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store
            .kv_put(put("b", b"x", now, KvExpect::Absent))
            .await
            .unwrap(),
        Some(1)
    );
    assert_eq!(
        store
            .kv_put(put("a", b"3", now, KvExpect::Version(1)))
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store
            .kv_put(put("a", b"3", now, KvExpect::Version(2)))
            .await
            .unwrap(),
        Some(3)
    );
    assert_eq!(
        store
            .kv_put(put("zz", b"3", now, KvExpect::Version(1)))
            .await
            .unwrap(),
        None
    );
    // Namespaces are separate.
    assert_eq!(store.kv_get("other", "a", now).await.unwrap(), None);
    // Listing by prefix, in key order.
    store
        .kv_put(put("ab", b"{}", now, KvExpect::Any))
        .await
        .unwrap();
    let keys: Vec<String> = store
        .kv_list("app", "a", now, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|i| i.key)
        .collect();
    assert_eq!(keys, ["a", "ab"]);
    let all = store.kv_list("app", "", now, 10).await.unwrap();
    assert_eq!(all.len(), 3);
    assert_eq!(all[0].size, 1);
    assert_eq!(store.kv_list("app", "", now, 1).await.unwrap().len(), 1);
    // Deletes, with and without a version.
    assert!(!store.kv_delete("app", "a", Some(1), now).await.unwrap());
    assert!(store.kv_delete("app", "a", Some(3), now).await.unwrap());
    assert!(!store.kv_delete("app", "a", None, now).await.unwrap());
    assert!(store.kv_delete("app", "b", None, now).await.unwrap());
    // Expiry: invisible from its time on, absent for create-only, purged later.
    let mut expiring = put("e", b"v", now, KvExpect::Any);
    expiring.expires_at = Some(now + 10);
    assert_eq!(store.kv_put(expiring).await.unwrap(), Some(1));
    assert!(store.kv_get("app", "e", now + 9).await.unwrap().is_some());
    assert!(store.kv_get("app", "e", now + 10).await.unwrap().is_none());
    assert!(
        store
            .kv_list("app", "e", now + 10, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store
            .kv_put(put("e", b"w", now + 10, KvExpect::Version(1)))
            .await
            .unwrap(),
        None
    );
    let mut again = put("e", b"w", now + 20, KvExpect::Absent);
    again.expires_at = Some(now + 30);
    assert_eq!(store.kv_put(again).await.unwrap(), Some(1));
    assert_eq!(store.kv_purge(now + 25).await.unwrap(), 0);
    assert_eq!(store.kv_purge(now + 30).await.unwrap(), 1);
    // A value of any bytes.
    let bytes: Vec<u8> = (0..=255).collect();
    store
        .kv_put(put("bin", &bytes, now, KvExpect::Any))
        .await
        .unwrap();
    assert_eq!(
        store
            .kv_get("app", "bin", now)
            .await
            .unwrap()
            .unwrap()
            .value,
        bytes
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_kv() {
    let schema = common::Schema::new("kv").await;
    let store = ember_store::open(&options(&schema.url)).await.unwrap();
    versions_expectations_expiry_and_listing(store).await;
    schema.drop_now().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_kv() {
    let dir = std::env::temp_dir().join(format!("ember-kv-{}", uuid::Uuid::new_v4().simple()));
    let url = format!("sqlite://{}", dir.join("ember.db").display());
    let store = ember_store::open(&options(&url)).await.unwrap();
    versions_expectations_expiry_and_listing(store).await;
}
