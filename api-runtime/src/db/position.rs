//! Replication positions: how far a primary has written and a replica has
//! replayed. PostgreSQL counts in WAL bytes (an LSN, `16/B374D848`); MariaDB
//! in GTIDs, one sequence number per replication domain
//! (`0-1-42,1-2-7`: domain-server-seqno). A position is also what a write's
//! `Dbapi-Consistency-Token` carries, in the engine's own text form.

use std::collections::VecDeque;
use std::fmt;
use std::time::{Duration, Instant};

/// Which kind of position an engine has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PositionKind {
    /// PostgreSQL's WAL location, `pg_lsn` text.
    Lsn,
    /// MariaDB's GTID position.
    Gtid,
}

/// A point in the primary's history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Position {
    Lsn(u64),
    /// (domain, server, sequence number), sorted by domain, one per domain.
    Gtid(Vec<(u32, u32, u64)>),
}

/// Text that is not a position of the expected kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{text:?} is not {}", match .kind {
    PositionKind::Lsn => "a PostgreSQL WAL position such as 0/16B3748",
    PositionKind::Gtid => "a MariaDB GTID position such as 0-1-42",
})]
pub struct BadPosition {
    pub kind: PositionKind,
    pub text: String,
}

impl Position {
    /// Parses the engine's text form; surrounding spaces are ignored.
    pub fn parse(kind: PositionKind, text: &str) -> Result<Position, BadPosition> {
        let bad = || BadPosition { kind, text: text.chars().take(64).collect() };
        let trimmed = text.trim();
        match kind {
            PositionKind::Lsn => {
                let (hi, lo) = trimmed.split_once('/').ok_or_else(bad)?;
                let half = |h: &str| {
                    let hex_digits = !h.is_empty() && h.len() <= 8 && h.bytes().all(|b| b.is_ascii_hexdigit());
                    hex_digits.then(|| u64::from_str_radix(h, 16).ok()).flatten()
                };
                Ok(Position::Lsn((half(hi).ok_or_else(bad)? << 32) | half(lo).ok_or_else(bad)?))
            }
            PositionKind::Gtid => {
                let mut gtids: Vec<(u32, u32, u64)> = Vec::new();
                for item in trimmed.split(',') {
                    let mut parts = item.trim().splitn(3, '-');
                    let mut next = || parts.next().filter(|p| p.bytes().all(|b| b.is_ascii_digit()));
                    let (Some(d), Some(s), Some(n)) = (next(), next(), next()) else { return Err(bad()) };
                    let gtid =
                        (d.parse().map_err(|_| bad())?, s.parse().map_err(|_| bad())?, n.parse().map_err(|_| bad())?);
                    match gtids.iter_mut().find(|g| g.0 == gtid.0) {
                        Some(same_domain) if same_domain.2 < gtid.2 => *same_domain = gtid,
                        Some(_) => {}
                        None => gtids.push(gtid),
                    }
                }
                gtids.sort_unstable();
                Ok(Position::Gtid(gtids))
            }
        }
    }

    /// Whether a replica that has replayed up to `replayed` shows
    /// everything up to `self`. A GTID position is reached when every one of
    /// its domains is (server ids do not matter: sequence numbers grow
    /// along a domain whoever writes).
    pub fn reached_by(&self, replayed: &Position) -> bool {
        match (self, replayed) {
            (Position::Lsn(wanted), Position::Lsn(done)) => done >= wanted,
            (Position::Gtid(wanted), Position::Gtid(done)) => {
                wanted.iter().all(|(domain, _, seq)| done.iter().any(|(d, _, s)| d == domain && s >= seq))
            }
            _ => false,
        }
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Position::Lsn(lsn) => write!(f, "{:X}/{:X}", lsn >> 32, lsn & 0xFFFF_FFFF),
            Position::Gtid(gtids) => {
                for (i, (d, s, n)) in gtids.iter().enumerate() {
                    write!(f, "{}{d}-{s}-{n}", if i > 0 { "," } else { "" })?;
                }
                Ok(())
            }
        }
    }
}

/// Most primary positions remembered while the replica is behind: at one a
/// second, an hour of lag, far past any sensible bound.
const MAX_SAMPLES: usize = 3600;

/// How far behind the primary a replica is, in time: the age of the oldest
/// primary position the replica has not replayed yet.
///
/// Honest on an idle primary, unlike the age of the last replayed
/// transaction (which grows while nothing is written): a replica that has
/// replayed everything the primary had is 0 behind however old that is,
/// and one that stopped replaying is behind by as long as the primary has
/// had something it lacks, however little was written.
#[derive(Debug, Default)]
pub struct LagTracker {
    /// Primary positions, oldest first, with when each was first seen.
    samples: VecDeque<(Position, Instant)>,
}

impl LagTracker {
    /// Records that the primary was at `primary` (when it answered) at
    /// `now`.
    pub fn primary_at(&mut self, primary: Position, now: Instant) {
        if self.samples.back().is_some_and(|(last, _)| *last == primary) || self.samples.len() >= MAX_SAMPLES {
            return;
        }
        self.samples.push_back((primary, now));
    }

    /// The lag of a replica that has replayed up to `replayed`, at `now`.
    pub fn lag(&mut self, replayed: &Position, now: Instant) -> Duration {
        while self.samples.front().is_some_and(|(p, _)| p.reached_by(replayed)) {
            self.samples.pop_front();
        }
        self.samples.front().map_or(Duration::ZERO, |(_, since)| now.saturating_duration_since(*since))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lsn(text: &str) -> Position {
        Position::parse(PositionKind::Lsn, text).unwrap()
    }

    fn gtid(text: &str) -> Position {
        Position::parse(PositionKind::Gtid, text).unwrap()
    }

    #[test]
    fn lsns_parse_compare_and_print_as_postgresql_does() {
        assert_eq!(lsn("0/16B3748"), Position::Lsn(0x16B3748));
        assert_eq!(lsn(" 16/B374D848 "), Position::Lsn((0x16 << 32) | 0xB374D848));
        assert_eq!(lsn("16/b374d848").to_string(), "16/B374D848");
        assert!(lsn("0/10").reached_by(&lsn("0/10")));
        assert!(lsn("0/10").reached_by(&lsn("1/0")));
        assert!(!lsn("1/0").reached_by(&lsn("0/FFFFFFFF")));
        for bad in ["", "0", "0/", "/1", "0/1/2", "x/1", "123456789/0", "-1/0", "0/+1"] {
            assert!(Position::parse(PositionKind::Lsn, bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn gtid_positions_are_reached_domain_by_domain() {
        assert_eq!(gtid("1-2-7, 0-1-42").to_string(), "0-1-42,1-2-7");
        assert!(gtid("0-1-42").reached_by(&gtid("0-1-42")));
        assert!(gtid("0-1-42").reached_by(&gtid("0-3-50,1-1-1")), "the server id does not matter");
        assert!(!gtid("0-1-42").reached_by(&gtid("0-1-41")));
        assert!(!gtid("0-1-42,1-2-7").reached_by(&gtid("0-1-99")), "a domain the replica lacks");
        assert_eq!(gtid("0-1-5,0-2-9"), gtid("0-2-9"), "one entry per domain, the latest");
        for bad in ["", "0-1", "0-1-2-3", "a-1-2", "0-1-2,", "-1-2-3", "0/16B3748"] {
            assert!(Position::parse(PositionKind::Gtid, bad).is_err(), "{bad:?}");
        }
        assert!(!gtid("0-1-1").reached_by(&lsn("0/1")), "positions of different kinds never meet");
    }

    #[test]
    fn lag_is_the_age_of_the_oldest_position_not_replayed() {
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        let mut lag = LagTracker::default();
        // Idle primary, replica caught up: no lag, however long.
        lag.primary_at(lsn("0/10"), at(0));
        assert_eq!(lag.lag(&lsn("0/10"), at(0)), Duration::ZERO);
        lag.primary_at(lsn("0/10"), at(100));
        assert_eq!(lag.lag(&lsn("0/10"), at(100)), Duration::ZERO);
        // A write the replica does not replay: its age.
        lag.primary_at(lsn("0/20"), at(101));
        assert_eq!(lag.lag(&lsn("0/10"), at(101)), Duration::ZERO);
        lag.primary_at(lsn("0/20"), at(102));
        assert_eq!(lag.lag(&lsn("0/10"), at(104)), Duration::from_secs(3));
        // Steady writes and a replica 15 s behind: about 15 s, never back
        // to 0 while it stays behind.
        let mut steady = LagTracker::default();
        for s in 0..60u64 {
            steady.primary_at(Position::Lsn(s * 100), at(s));
            let replayed = Position::Lsn(s.saturating_sub(15) * 100);
            let behind = steady.lag(&replayed, at(s));
            if s >= 16 {
                assert_eq!(behind, Duration::from_secs(14), "at {s}");
            }
        }
    }
}
