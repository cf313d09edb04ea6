//! What the live console shows that no counter holds: the last broadcasts per stream and the
//! open connections' details; and the `[console]` section that turns it on. Nothing here is
//! kept, and nothing costs anything, unless the console is enabled (it is in development
//! mode: `auth.mode = "none"` on a loopback address).
//!
//! **Bounds and overflow policy** of the recent broadcasts: at most `console.recent_streams`
//! streams (100), each with its last `console.recent_per_stream` broadcasts (10, oldest
//! dropped first); a new stream beyond the limit evicts the stream whose last broadcast is
//! the oldest; each payload is kept up to `console.recent_payload_bytes` (2 KiB), longer ones
//! cut at a character boundary and marked truncated. So at most 100 × 10 × 2 KiB, about 2 MB.
//! The connection directory holds one small entry per open connection (bounded by
//! `limits.max_connections`); the console lists the first 200.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::channels::ChannelSection;
use crate::error::ConfigError;

/// The built-in channel of public streams (development only), named as AnyCable names its
/// own: `{"channel":"$pubsub","stream_name":"<any stream>"}` streams that stream.
pub const PUBLIC_STREAMS_CHANNEL: &str = "$pubsub";

/// `[console]`
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ConsoleSection {
    /// Serve `GET /console`; unset: only in development mode.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// The `$pubsub` channel that streams any stream; unset: only in development mode
    /// (refused outside it: it would let anyone read any stream).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_streams: Option<bool>,
    /// Streams whose last broadcasts are kept.
    pub recent_streams: usize,
    /// Broadcasts kept per stream.
    pub recent_per_stream: usize,
    /// Bytes of each payload kept.
    pub recent_payload_bytes: usize,
}

impl Default for ConsoleSection {
    fn default() -> Self {
        ConsoleSection {
            enabled: None,
            public_streams: None,
            recent_streams: 100,
            recent_per_stream: 10,
            recent_payload_bytes: 2048,
        }
    }
}

/// How much of the recent broadcasts is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecentLimits {
    /// Streams.
    pub streams: usize,
    /// Broadcasts per stream.
    pub per_stream: usize,
    /// Bytes per payload.
    pub payload_bytes: usize,
}

/// The `[console]` section, checked.
#[derive(Debug, Clone)]
pub struct ConsoleSettings {
    /// Whether `/console` is served (and activity recorded).
    pub enabled: bool,
    /// Whether the `$pubsub` channel exists.
    pub public_streams: bool,
    /// What the console keeps.
    pub recent: RecentLimits,
}

impl ConsoleSettings {
    /// Checks `[console]`. `development`: `auth.mode = "none"` on a loopback address, where
    /// the console and public streams are on unless turned off.
    pub fn compile(
        section: &ConsoleSection,
        development: bool,
    ) -> Result<ConsoleSettings, ConfigError> {
        let public_streams = section.public_streams.unwrap_or(development);
        if public_streams && !development {
            return Err(ConfigError::new(
                "console.public_streams",
                "lets any client read any stream, so it is only allowed in development mode \
                 (auth.mode = \"none\" on a loopback address)",
            ));
        }
        let bounded = [
            ("console.recent_streams", section.recent_streams, 10_000),
            (
                "console.recent_per_stream",
                section.recent_per_stream,
                1_000,
            ),
            (
                "console.recent_payload_bytes",
                section.recent_payload_bytes,
                64 * 1024,
            ),
        ];
        for (key, value, max) in bounded {
            if value == 0 || value > max {
                return Err(ConfigError::new(
                    key,
                    format!("must be between 1 and {max}"),
                ));
            }
        }
        Ok(ConsoleSettings {
            enabled: section.enabled.unwrap_or(development),
            public_streams,
            recent: RecentLimits {
                streams: section.recent_streams,
                per_stream: section.recent_per_stream,
                payload_bytes: section.recent_payload_bytes,
            },
        })
    }

    /// `channels` plus the `$pubsub` channel when public streams are on (a configured channel
    /// of that name wins).
    pub fn with_public_streams(
        &self,
        channels: &BTreeMap<String, ChannelSection>,
    ) -> BTreeMap<String, ChannelSection> {
        let mut all = channels.clone();
        if self.public_streams {
            all.entry(PUBLIC_STREAMS_CHANNEL.to_string())
                .or_insert_with(|| ChannelSection {
                    streams: vec!["{params.stream_name}".into()],
                    require_params: vec!["stream_name".into()],
                    ..ChannelSection::default()
                });
        }
        all
    }
}

/// What the console reads that no counter holds.
#[derive(Debug)]
pub struct Activity {
    /// The last broadcasts per stream.
    pub recent: RecentBroadcasts,
    /// The open connections.
    pub connections: ConnectionDirectory,
}

impl Activity {
    /// Empty, keeping at most `limits`.
    pub fn new(limits: RecentLimits) -> Activity {
        Activity {
            recent: RecentBroadcasts::new(limits),
            connections: ConnectionDirectory::default(),
        }
    }
}

/// Unix milliseconds now.
fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// One broadcast as the console shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RecentBroadcast {
    /// When it was delivered (Unix milliseconds).
    pub at_ms: u64,
    /// Its payload as delivered (JSON), possibly cut.
    pub payload: String,
    /// Whether `payload` was cut at `console.recent_payload_bytes`.
    pub truncated: bool,
    /// Connections it was handed to.
    pub recipients: usize,
}

#[derive(Debug)]
struct StreamLog {
    /// Order of the stream's last broadcast among all, for eviction.
    last: u64,
    entries: VecDeque<RecentBroadcast>,
}

/// The last broadcasts per stream, bounded as the module docs say.
#[derive(Debug)]
pub struct RecentBroadcasts {
    limits: RecentLimits,
    state: Mutex<(u64, HashMap<String, StreamLog>)>,
}

impl RecentBroadcasts {
    fn new(limits: RecentLimits) -> RecentBroadcasts {
        RecentBroadcasts {
            limits,
            state: Mutex::new((0, HashMap::new())),
        }
    }

    /// Records a broadcast on `stream` (once per broadcast, never per delivery).
    pub fn record(&self, stream: &str, payload: &str, recipients: usize) {
        let limits = self.limits;
        let mut cut = payload.len().min(limits.payload_bytes);
        while !payload.is_char_boundary(cut) {
            cut -= 1;
        }
        let entry = RecentBroadcast {
            at_ms: unix_ms(),
            payload: payload[..cut].to_string(),
            truncated: cut < payload.len(),
            recipients,
        };
        let mut guard = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let (seq, streams) = &mut *guard;
        *seq += 1;
        if !streams.contains_key(stream)
            && streams.len() >= limits.streams
            && let Some(oldest) = streams
                .iter()
                .min_by_key(|(_, log)| log.last)
                .map(|(name, _)| name.clone())
        {
            streams.remove(&oldest);
        }
        let log = streams
            .entry(stream.to_string())
            .or_insert_with(|| StreamLog {
                last: 0,
                entries: VecDeque::new(),
            });
        log.last = *seq;
        if log.entries.len() == limits.per_stream {
            log.entries.pop_front();
        }
        log.entries.push_back(entry);
    }

    /// Every stream kept, the most recently active first, each with its broadcasts newest
    /// first.
    pub fn snapshot(&self) -> Vec<(String, Vec<RecentBroadcast>)> {
        let guard = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let mut streams: Vec<(u64, String, Vec<RecentBroadcast>)> = guard
            .1
            .iter()
            .map(|(name, log)| {
                (
                    log.last,
                    name.clone(),
                    log.entries.iter().rev().cloned().collect(),
                )
            })
            .collect();
        drop(guard);
        streams.sort_by_key(|s| std::cmp::Reverse(s.0));
        streams.into_iter().map(|(_, n, e)| (n, e)).collect()
    }
}

/// One open connection, as the console lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConnectionInfo {
    /// Rails' connection identifier (empty without identifiers).
    pub identity: String,
    /// The client's address.
    pub remote: SocketAddr,
    /// When it opened (Unix milliseconds).
    pub opened_ms: u64,
}

/// The open connections, by id.
#[derive(Debug, Default)]
pub struct ConnectionDirectory(Mutex<BTreeMap<u64, ConnectionInfo>>);

impl ConnectionDirectory {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, ConnectionInfo>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A connection opened.
    pub fn opened(&self, id: u64, identity: &str, remote: SocketAddr) {
        self.lock().insert(
            id,
            ConnectionInfo {
                identity: identity.to_string(),
                remote,
                opened_ms: unix_ms(),
            },
        );
    }

    /// A connection closed.
    pub fn closed(&self, id: u64) {
        self.lock().remove(&id);
    }

    /// The first `limit` connections by id, and how many there are.
    pub fn list(&self, limit: usize) -> (usize, Vec<(u64, ConnectionInfo)>) {
        let all = self.lock();
        let listed = all
            .iter()
            .take(limit)
            .map(|(id, c)| (*id, c.clone()))
            .collect();
        (all.len(), listed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(streams: usize, per_stream: usize, payload_bytes: usize) -> RecentLimits {
        RecentLimits {
            streams,
            per_stream,
            payload_bytes,
        }
    }

    #[test]
    fn recent_broadcasts_keep_the_last_per_stream_and_evict_the_quietest_stream() {
        let r = RecentBroadcasts::new(limits(2, 2, 1024));
        r.record("a", "1", 1);
        r.record("a", "2", 1);
        r.record("a", "3", 1);
        r.record("b", "1", 1);
        r.record("a", "4", 1);
        // "b" is now the stream whose last broadcast is oldest: "c" evicts it.
        r.record("c", "1", 3);
        let snap = r.snapshot();
        let names: Vec<&str> = snap.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["c", "a"]);
        let a: Vec<&str> = snap[1].1.iter().map(|b| b.payload.as_str()).collect();
        assert_eq!(a, ["4", "3"], "newest first, two kept");
        assert_eq!(snap[0].1[0].recipients, 3);
    }

    #[test]
    fn long_payloads_are_cut_at_a_character_boundary() {
        let r = RecentBroadcasts::new(limits(1, 1, 4));
        r.record("s", r#""héé""#, 0);
        let kept = &r.snapshot()[0].1[0];
        assert_eq!(kept.payload, "\"h\u{e9}");
        assert!(kept.truncated);
    }

    #[test]
    fn public_streams_only_in_development() {
        let on = ConsoleSettings::compile(&ConsoleSection::default(), true).unwrap();
        assert!(on.enabled && on.public_streams);
        let channels = on.with_public_streams(&BTreeMap::new());
        assert!(channels.contains_key(PUBLIC_STREAMS_CHANNEL));
        let off = ConsoleSettings::compile(&ConsoleSection::default(), false).unwrap();
        assert!(!off.enabled && !off.public_streams);
        assert!(off.with_public_streams(&BTreeMap::new()).is_empty());
        let forced = ConsoleSection {
            public_streams: Some(true),
            ..ConsoleSection::default()
        };
        assert_eq!(
            ConsoleSettings::compile(&forced, false).unwrap_err().key,
            "console.public_streams"
        );
        let production_console = ConsoleSection {
            enabled: Some(true),
            ..ConsoleSection::default()
        };
        assert!(
            ConsoleSettings::compile(&production_console, false)
                .unwrap()
                .enabled
        );
    }
}
