//! One writer at a time per resource on this instance.
//!
//! Updates, patches and deletes by id read the current version, plan the next one and
//! commit it only if nobody else got there first; the loser retries. Left alone, many
//! writers of one resource on one instance keep beating each other, and an unlucky one
//! can lose every race it runs. Taking a turn first queues this instance's writers of a
//! resource, so a race is only ever between instances, one writer each.

use std::hash::{Hash, Hasher};

use tokio::sync::{Mutex, MutexGuard};

/// How many locks resources share: two resources rarely wait on one another.
const STRIPES: usize = 1024;

/// Locks striped by resource.
pub(crate) struct Turns {
    stripes: Box<[Mutex<()>]>,
}

impl Default for Turns {
    fn default() -> Self {
        Self {
            stripes: (0..STRIPES).map(|_| Mutex::new(())).collect(),
        }
    }
}

impl Turns {
    /// Waits until it is this caller's turn to write `res_type/id` on this instance.
    pub(crate) async fn take(&self, res_type: &str, id: &str) -> MutexGuard<'_, ()> {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        (res_type, id).hash(&mut hasher);
        let stripe = (hasher.finish() % STRIPES as u64) as usize;
        self.stripes[stripe].lock().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn one_resource_has_one_writer_at_a_time() {
        let turns = Turns::default();
        let held = turns.take("Patient", "a").await;
        let waiting = tokio::time::timeout(
            std::time::Duration::from_millis(20),
            turns.take("Patient", "a"),
        )
        .await;
        assert!(waiting.is_err(), "a second writer of Patient/a must wait");
        drop(held);
        let next = tokio::time::timeout(
            std::time::Duration::from_millis(20),
            turns.take("Patient", "a"),
        )
        .await;
        assert!(next.is_ok(), "the next writer gets its turn");
    }
}
