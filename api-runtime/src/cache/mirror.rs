//! Each replica's copy of the shared generations, so that a cache hit reads
//! them from memory instead of asking Redis after it arrived.
//!
//! A bump (a Lua script: `INCR` of each key, then one `PUBLISH` of the new
//! values on `<prefix>gen-bumps`) reaches every subscribed replica. Each
//! applies it to its copy and only then acknowledges it on the writer's
//! channel (`<prefix>gen-acks:<replica>`); the writer answers its client
//! once as many replicas have acknowledged as `PUBLISH` reached (itself
//! included), or after [`ACK_WAIT`]. So a write answered on any replica is
//! in every replica's copy before anyone can read after it: fresh at once,
//! as with a read of Redis per hit, but paid once per write instead.
//!
//! A copy is used only while its subscription is live. It starts empty at
//! each subscription: a generation not in it is read from Redis (the
//! shared `MGET`) and learned, unless the subscription was lost meanwhile
//! or a bump reached the copy first. Bumps arrive on the one subscription
//! in the order the script ran, so the copy takes each bump's values as
//! they are, even lower ones: Redis may evict a generation key under
//! memory pressure (the operator's Redis evicts least recently used keys),
//! and the script then starts the key again from Redis's clock in
//! microseconds, above any value it had, so that no answer filed under an
//! old value is found again. A lost subscription (the stream's end, or a
//! ping unanswered in [`REDIS_WAIT`]) clears the copy and every lookup
//! reads Redis until the replica has subscribed again.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use futures_util::{FutureExt, StreamExt};
use redis::aio::{PubSubSink, PubSubStream};
use serde::Deserialize;
use tokio::sync::watch;

use crate::redis_link::{REDIS_WAIT, RedisLink, within_wait};

/// The longest a write waits for the other replicas' acknowledgements.
const ACK_WAIT: Duration = REDIS_WAIT;
/// How often a live subscription is pinged (a half-open connection sends
/// no end).
const PING_EVERY: Duration = Duration::from_secs(1);
/// The first wait before subscribing again, doubled up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// Most messages applied before their acknowledgements are sent.
const BATCH: usize = 256;
/// The channel bumps are published on, after the key prefix.
const BUMPS: &str = "gen-bumps";
/// A writer's acknowledgements channel, after the key prefix: this and
/// the writer's name.
const ACKS: &str = "gen-acks:";

/// `KEYS`: the generation keys; `ARGV`: the channel, the writer, the
/// bump's number, then each key's generation name. Returns how many
/// subscribers `PUBLISH` reached.
/// A key that did not exist (never bumped, or evicted) starts from the
/// clock: above whatever value an evicted key had.
const BUMP_SCRIPT: &str = r"
local gens = {}
for i, key in ipairs(KEYS) do
  local value = redis.call('INCR', key)
  if value == 1 then
    local now = redis.call('TIME')
    value = tonumber(now[1]) * 1000000 + tonumber(now[2])
    redis.call('SET', key, value)
  end
  gens[ARGV[i + 3]] = string.format('%d', value)
end
return redis.call('PUBLISH', ARGV[1], cjson.encode({from = ARGV[2], seq = ARGV[3], gens = gens}))
";

/// What travels on the bumps channel (numbers as text: Lua's JSON writes
/// large numbers in exponent form).
#[derive(Deserialize)]
struct BumpMessage {
    from: String,
    seq: String,
    gens: HashMap<String, String>,
}

pub struct Mirror {
    /// This replica's name on the channels.
    replica: String,
    copy: RwLock<Copy>,
    /// Bumps of this replica waiting for acknowledgements, by number.
    acks: Mutex<HashMap<u64, watch::Sender<u64>>>,
    next_seq: AtomicU64,
    bump_script: redis::Script,
}

#[derive(Default)]
struct Copy {
    live: bool,
    /// Counts subscriptions: a value read from Redis under an earlier one
    /// is not learned.
    epoch: u64,
    values: HashMap<String, u64, foldhash::fast::RandomState>,
}

/// The subscription's task; it stops when this is dropped.
pub struct Following {
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Following {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Mirror {
    pub fn new() -> Arc<Mirror> {
        Arc::new(Mirror {
            replica: uuid::Uuid::new_v4().simple().to_string(),
            copy: RwLock::default(),
            acks: Mutex::default(),
            next_seq: AtomicU64::new(1),
            bump_script: redis::Script::new(BUMP_SCRIPT),
        })
    }

    /// Subscribes (and subscribes again whenever the subscription is lost)
    /// until the returned handle is dropped.
    pub fn follow(self: &Arc<Self>, link: Arc<RedisLink>) -> Following {
        Following { task: tokio::spawn(self.clone().subscribe_for_ever(link)) }
    }

    /// The values of `keys` from the copy, when it is live and holds them
    /// all.
    pub fn lookup(&self, keys: &[String]) -> Option<Vec<u64>> {
        let copy = self.copy.read().unwrap_or_else(|poisoned| poisoned.into_inner());
        if !copy.live {
            return None;
        }
        keys.iter().map(|key| copy.values.get(key.as_str()).copied()).collect()
    }

    /// The subscription a read of Redis starts under, if live: what it
    /// reads is learned only under the same one ([`Mirror::learn`]).
    pub fn epoch(&self) -> Option<u64> {
        let copy = self.copy.read().unwrap_or_else(|poisoned| poisoned.into_inner());
        copy.live.then_some(copy.epoch)
    }

    /// Values read from Redis during subscription `epoch`, for the names
    /// no bump has reached the copy with meanwhile (a bump's value is as
    /// new as the read's or newer).
    pub fn learn(&self, epoch: u64, values: impl IntoIterator<Item = (String, u64)>) {
        let mut copy = self.copy.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        if copy.live && copy.epoch == epoch {
            for (name, value) in values {
                copy.values.entry(name).or_insert(value);
            }
        }
    }

    /// Bumps `names` (generation names) whose keys are `keys`, publishes
    /// the new values and waits for the replicas' acknowledgements; false
    /// when Redis did not answer.
    pub async fn bump(&self, link: &Arc<RedisLink>, names: &[String], keys: &[String]) -> bool {
        let seq = self.next_seq.fetch_add(1, Ordering::Relaxed);
        // Listening before publishing: an acknowledgement may come back on
        // the subscription before the script's own answer does.
        let mut acks_seen = {
            let mut acks = self.acks.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            acks.entry(seq).or_insert_with(|| watch::Sender::new(0)).subscribe()
        };
        let mut invocation = self.bump_script.prepare_invoke();
        invocation.key(keys).arg(link.key(BUMPS)).arg(&self.replica).arg(seq).arg(names);
        // This replica's copy takes the bump from its own subscription,
        // which acknowledges it like any other (counted in `reached`).
        let Some(reached) = link.run(invocation.invoke_async::<u64>(&mut link.connection())).await else {
            self.forget(seq);
            return false;
        };
        let all = acks_seen.wait_for(|count| *count >= reached);
        let acknowledged = tokio::time::timeout(ACK_WAIT, all).await.is_ok_and(|seen| seen.is_ok());
        if !acknowledged {
            crate::metrics::global().invalidation_unacknowledged();
            tracing::warn!(
                replicas = reached,
                acknowledged = *acks_seen.borrow(),
                "a write's cache invalidation was not acknowledged by every replica in time; \
                 a replica that missed it may answer from its cache until the entry's TTL ends"
            );
        }
        self.forget(seq);
        true
    }

    fn forget(&self, seq: u64) {
        self.acks.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).remove(&seq);
    }

    fn acknowledge(&self, seq: u64) {
        if let Some(waiting) = self.acks.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).get(&seq) {
            waiting.send_modify(|count| *count += 1);
        }
    }

    fn set_live(&self, live: bool) {
        let mut copy = self.copy.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        copy.live = live;
        copy.epoch += 1;
        copy.values.clear();
        crate::metrics::global().generations_mirrored(live);
    }

    async fn subscribe_for_ever(self: Arc<Self>, link: Arc<RedisLink>) {
        let mut backoff = FIRST_BACKOFF;
        let mut was_live = false;
        loop {
            let acks = acks_channel(&link, &self.replica);
            let reason = match self.subscribe(&link, &acks).await {
                Ok((sink, stream)) => {
                    self.set_live(true);
                    if !was_live {
                        tracing::info!("cache generations mirrored from Redis: hits read no generation from Redis");
                    }
                    was_live = true;
                    backoff = FIRST_BACKOFF;
                    let reason = self.follow_messages(&link, &acks, sink, stream).await;
                    self.set_live(false);
                    reason
                }
                Err(e) => e.to_string(),
            };
            if was_live {
                tracing::warn!(
                    reason = reason.as_str(),
                    "the cache's generation subscription was lost: hits read generations from Redis until it is back"
                );
                was_live = false;
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }

    async fn subscribe(&self, link: &RedisLink, acks: &str) -> redis::RedisResult<(PubSubSink, PubSubStream)> {
        let (mut sink, stream) = link.subscriber().await?.split();
        within_wait(sink.subscribe(&[link.key(BUMPS).as_str(), acks][..])).await?;
        Ok((sink, stream))
    }

    /// Applies what arrives until the subscription ends; says why it did.
    /// `acks` is this replica's acknowledgements channel.
    async fn follow_messages(
        &self,
        link: &Arc<RedisLink>,
        acks: &str,
        mut sink: PubSubSink,
        mut stream: PubSubStream,
    ) -> String {
        let mut ping = tokio::time::interval(PING_EVERY);
        ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let first = tokio::select! {
                message = stream.next() => match message {
                    Some(message) => message,
                    None => return "the subscription's connection closed".to_string(),
                },
                _ = ping.tick() => {
                    match within_wait(sink.ping::<redis::Value>()).await {
                        Ok(_) => continue,
                        Err(e) => return format!("a ping failed: {e}"),
                    }
                }
            };
            // Everything already arrived is applied first, and acknowledged
            // together: one `PUBLISH` per writer.
            let mut owed: HashMap<String, Vec<u64>> = HashMap::new();
            let mut next = Some(first);
            let mut taken = 0;
            while let Some(message) = next.take() {
                taken += 1;
                self.apply_message(acks, &message, &mut owed);
                if taken < BATCH {
                    next = stream.next().now_or_never().flatten();
                }
            }
            if !owed.is_empty() && !self.send_acknowledgements(link, owed).await {
                return "an acknowledgement could not be sent".to_string();
            }
        }
    }

    /// One message: an acknowledgement of this replica's bump, or a bump
    /// to apply (and to acknowledge, unless it is this replica's own).
    fn apply_message(&self, acks: &str, message: &redis::Msg, owed: &mut HashMap<String, Vec<u64>>) {
        let Ok(payload) = message.get_payload::<String>() else { return };
        if message.get_channel_name() == acks {
            for seq in payload.split(' ').filter_map(|s| s.parse().ok()) {
                self.acknowledge(seq);
            }
            return;
        }
        let Ok(bump) = serde_json::from_str::<BumpMessage>(&payload) else {
            tracing::warn!("ignored a message on the cache's generation channel that is not a bump");
            return;
        };
        let Ok(seq) = bump.seq.parse::<u64>() else { return };
        {
            let mut copy = self.copy.write().unwrap_or_else(|poisoned| poisoned.into_inner());
            if copy.live {
                for (name, value) in bump.gens {
                    if let Ok(value) = value.parse() {
                        copy.values.insert(name, value);
                    }
                }
            }
        }
        if bump.from == self.replica {
            self.acknowledge(seq);
        } else {
            owed.entry(bump.from).or_default().push(seq);
        }
    }

    async fn send_acknowledgements(&self, link: &Arc<RedisLink>, owed: HashMap<String, Vec<u64>>) -> bool {
        let mut pipe = redis::pipe();
        for (writer, seqs) in owed {
            let text: Vec<String> = seqs.iter().map(u64::to_string).collect();
            pipe.cmd("PUBLISH").arg(acks_channel(link, &writer)).arg(text.join(" ")).ignore();
        }
        link.run(pipe.query_async::<()>(&mut link.connection())).await.is_some()
    }
}

/// Where `replica`'s bumps are acknowledged.
fn acks_channel(link: &RedisLink, replica: &str) -> String {
    link.key(&format!("{ACKS}{replica}"))
}
