//! Per-table change generations: a counter per table that every write
//! through the API (and the change feed) bumps. A cached answer is filed
//! under the generations of the tables it read, so after a write the next
//! read looks for another entry and misses: fresh at once, with no scan
//! and no deletion.
//!
//! With Redis the counters live there (`<prefix>gen:<schema>.<table>`),
//! so a write through any replica is seen by every replica's next read;
//! each replica keeps a copy that every bump updates before the write is
//! answered ([`super::mirror`]), and reads Redis only for what its copy
//! lacks. Without Redis they are this process's own.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use tokio::sync::watch;

use super::mirror::{Following, Mirror};
use crate::redis_link::RedisLink;

/// Bumped when any answer may be stale: a gap in the change feed, a
/// function call that names no tables, a write while Redis was away.
pub const EVERYTHING: &str = "*";
/// Bumped by every write: a view reads tables the API cannot see, so an
/// answer that reads a view depends on every write.
pub const VIEWS: &str = "*views";

pub struct Generations {
    redis: Option<Arc<RedisLink>>,
    local: RwLock<HashMap<String, u64>>,
    /// A bump could not reach Redis: other replicas did not see it, so the
    /// next time Redis answers everything is bumped once.
    missed: AtomicBool,
    reads: Arc<SharedReads>,
    mirror: Arc<Mirror>,
    /// The mirror's subscription, with Redis and inside a runtime.
    _following: Option<Following>,
}

impl Generations {
    pub fn new(redis: Option<Arc<RedisLink>>) -> Generations {
        let mirror = Mirror::new();
        let following = match (&redis, tokio::runtime::Handle::try_current()) {
            (Some(link), Ok(_)) => Some(mirror.follow(link.clone())),
            _ => None,
        };
        Generations {
            redis,
            local: RwLock::default(),
            missed: AtomicBool::new(false),
            reads: Arc::default(),
            mirror,
            _following: following,
        }
    }

    /// The subscription the mirrored generations are kept under, while
    /// they are (a new number after each time it was lost).
    pub fn mirrored_since(&self) -> Option<u64> {
        self.mirror.epoch()
    }

    /// The generations of `keys`, in order (0 for one never bumped);
    /// `None` while Redis is configured but unreachable (the cache is then
    /// bypassed).
    pub async fn current(&self, keys: &[String]) -> Option<Vec<u64>> {
        let Some(link) = &self.redis else {
            let local = self.local.read().expect("the generation map is never poisoned");
            return Some(keys.iter().map(|k| local.get(k).copied().unwrap_or(0)).collect());
        };
        if !link.is_up() {
            return None;
        }
        if self.missed.load(Ordering::Relaxed) && self.bump_in_redis(link, &[EVERYTHING.to_string()]).await {
            self.missed.store(false, Ordering::Relaxed);
        }
        if let Some(mirrored) = self.mirror.lookup(keys) {
            return Some(mirrored);
        }
        // Taken before the read is sent: what it reads is learned only if
        // the subscription that would have reported later bumps held all
        // along.
        let epoch = self.mirror.epoch();
        let read = self.reads.read(link, keys).await?;
        let values: Vec<u64> = keys.iter().map(|k| read.get(k).copied().unwrap_or(0)).collect();
        if let Some(epoch) = epoch {
            self.mirror.learn(epoch, keys.iter().cloned().zip(values.iter().copied()));
        }
        Some(values)
    }

    /// `tables` (generation keys) changed; every view answer may have too.
    pub async fn bump(&self, tables: &[String]) {
        let mut keys: Vec<String> = tables.to_vec();
        keys.push(VIEWS.to_string());
        match &self.redis {
            None => {
                let mut local = self.local.write().expect("the generation map is never poisoned");
                for key in keys {
                    *local.entry(key).or_default() += 1;
                }
            }
            Some(link) => {
                if !self.bump_in_redis(link, &keys).await {
                    self.missed.store(true, Ordering::Relaxed);
                }
            }
        }
    }

    /// Bumps `names` in Redis and waits until every replica's mirror has
    /// them; false when Redis did not answer.
    async fn bump_in_redis(&self, link: &Arc<RedisLink>, names: &[String]) -> bool {
        let keys: Vec<String> = names.iter().map(|name| generation_key(link, name)).collect();
        self.mirror.bump(link, names, &keys).await
    }
}

/// The Redis key of a table's generation: `<prefix>gen:<schema>.<table>`.
fn generation_key(link: &RedisLink, key: &str) -> String {
    link.key(&format!("gen:{key}"))
}

/// The generations read from Redis in one `MGET`, by key; `None` when
/// Redis did not answer.
type Read = Option<Arc<HashMap<String, u64>>>;

/// Generation reads from Redis, shared by the requests that ask together:
/// under load one `MGET` answers many cache lookups instead of one each.
/// A request joins only the next `MGET`, one not sent yet, while another is
/// in flight, so what it reads left Redis after it asked: a bump that
/// finished before it asked (a write answered on any replica) is seen.
#[derive(Default)]
struct SharedReads {
    state: Mutex<ReadState>,
}

#[derive(Default)]
struct ReadState {
    in_flight: bool,
    /// The keys the next `MGET` reads and where its answer goes.
    next: Option<Batch>,
}

struct Batch {
    keys: Vec<String>,
    answer: watch::Sender<Option<Read>>,
}

impl Batch {
    fn new() -> Batch {
        Batch { keys: Vec::new(), answer: watch::Sender::new(None) }
    }
}

impl SharedReads {
    async fn read(self: &Arc<Self>, link: &Arc<RedisLink>, keys: &[String]) -> Read {
        let mut answer = {
            let mut state = self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            let batch = state.next.get_or_insert_with(Batch::new);
            for key in keys {
                if !batch.keys.contains(key) {
                    batch.keys.push(key.clone());
                }
            }
            let answer = batch.answer.subscribe();
            if !state.in_flight {
                state.in_flight = true;
                // A task of its own: the batch is sent whatever becomes of
                // the request that started it.
                tokio::spawn(self.clone().send(link.clone()));
            }
            answer
        };
        // The sender gone without an answer (the runtime stopping) reads as
        // Redis not answering.
        let read = answer.wait_for(Option::is_some).await.ok()?.clone();
        read.flatten()
    }

    /// Sends the pending `MGET`, then each one that gathered meanwhile.
    async fn send(self: Arc<Self>, link: Arc<RedisLink>) {
        let mut sending = Sending { reads: &self, finished: false };
        loop {
            // Taken in a statement of its own, so the lock is released
            // before anything else (`sending`'s drop takes it too).
            let next = self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).next.take();
            let Some(batch) = next else { return };
            let mut command = redis::cmd("MGET");
            for key in &batch.keys {
                command.arg(generation_key(&link, key));
            }
            let values: Option<Vec<Option<u64>>> = link.run(command.query_async(&mut link.connection())).await;
            let read = values.map(|values| {
                Arc::new(batch.keys.iter().cloned().zip(values.into_iter().map(Option::unwrap_or_default)).collect())
            });
            batch.answer.send_replace(Some(read));
            let mut state = self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            if state.next.is_none() {
                state.in_flight = false;
                sending.finished = true;
                return;
            }
        }
    }
}

/// However [`SharedReads::send`] ends: when not by finishing (a panic, or
/// the runtime dropping the task), the next batch is dropped, so that its
/// readers go on without the cache instead of waiting for ever, and a later
/// read starts a new sender.
struct Sending<'a> {
    reads: &'a SharedReads,
    finished: bool,
}

impl Drop for Sending<'_> {
    fn drop(&mut self) {
        if !self.finished {
            let mut state = self.reads.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            state.in_flight = false;
            state.next = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_sender_that_stops_early_lets_its_readers_go_on() {
        let reads = Arc::new(SharedReads::default());
        let mut waiting = {
            let mut state = reads.state.lock().unwrap();
            state.in_flight = true;
            state.next.get_or_insert_with(Batch::new).answer.subscribe()
        };
        drop(Sending { reads: &reads, finished: false });
        assert!(waiting.wait_for(Option::is_some).await.is_err(), "the waiting readers are let go");
        let state = reads.state.lock().unwrap();
        assert!(!state.in_flight && state.next.is_none(), "a later read starts a new sender");
    }

    #[tokio::test]
    async fn local_bumps_change_the_tables_and_views_only() {
        let g = Generations::new(None);
        let keys = ["public.a".to_string(), "public.b".to_string(), VIEWS.to_string(), EVERYTHING.to_string()];
        assert_eq!(g.current(&keys).await, Some(vec![0, 0, 0, 0]));
        g.bump(&["public.a".to_string()]).await;
        assert_eq!(g.current(&keys).await, Some(vec![1, 0, 1, 0]));
        g.bump(&[EVERYTHING.to_string()]).await;
        assert_eq!(g.current(&keys).await, Some(vec![1, 0, 2, 1]));
    }
}
