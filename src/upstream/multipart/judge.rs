//! Whether splitting a download can help: the rule, apart from the machinery that splits.
//!
//! More connections help only where one TCP connection gets a fraction of the pipe (a
//! CDN that shapes each connection, a long round trip). Where the bottleneck is
//! elsewhere they only add requests and memory (50 downloads on two cores once made
//! 1,967 ranged requests and 317 MiB of chunks for nothing). So a download splits only
//! when all of these hold:
//!
//! - **The link is not local.** A registry reached at a loopback or private address
//!   (anything [`crate::egress::is_public`] refuses) gives each connection all it can
//!   take; a slow connection there is a busy machine, and more connections share the
//!   same cores. `multipart.split_local_links` lifts this for a shaping relay on a local
//!   address (the WAN benchmark and the multipart tests run one).
//! - **The probe waited on the link most of the time.** A client that reads slowly
//!   keeps the download waiting on the client, and splitting cannot make it read faster.
//! - **The link is slow while waited on.** The rate is bytes over the time spent
//!   waiting on the connection, not wall time, so the client's and the CPU's share of
//!   the time does not count against the link.
//!
//! Known gap: on a public address, a machine so busy that the download's own task waits
//! long to be scheduled still looks like a slow link (the wait includes the scheduling
//! delay). The process-wide budget (`multipart.budget_bytes`) bounds what that costs.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Whether a registry at `peer` may be split at all (the first rule).
pub fn may_split(peer: Option<SocketAddr>, split_local_links: bool) -> bool {
    split_local_links || peer.is_none_or(|peer| crate::egress::is_public(peer.ip()))
}

/// Least share of the probe spent waiting on the link for it to count as the bottleneck.
const LINK_BOUND_SHARE: f64 = 0.5;

/// What a probe found.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Verdict {
    /// The link is the bottleneck and slow: split. The rate is in bytes a second over
    /// the time spent waiting on it.
    Capped { rate: u64 },
    /// The link is fast enough.
    Fast { rate: u64 },
    /// The download waited on its client (or the CPU) more than on the link.
    NotLinkBound { waited_share: f64 },
}

/// One first connection watched for `probe`; see the module docs.
#[derive(Debug)]
pub struct Probe {
    probe: Duration,
    capped_below: u64,
    /// When the first frame came.
    started: Option<Instant>,
    bytes: u64,
    /// When the connection last had nothing for us, until its next frame.
    waiting_since: Option<Instant>,
    waited: Duration,
}

impl Probe {
    /// A probe of `probe` that takes a rate below `capped_below` bytes a second as capped.
    pub fn new(probe: Duration, capped_below: u64) -> Probe {
        Probe { probe, capped_below, started: None, bytes: 0, waiting_since: None, waited: Duration::ZERO }
    }

    /// The connection had nothing to give at `now`: the time until its next frame is
    /// the link's.
    pub fn waiting(&mut self, now: Instant) {
        self.waiting_since.get_or_insert(now);
    }

    /// A frame of `len` bytes came at `now`; the verdict once the probe is over.
    pub fn frame(&mut self, len: u64, now: Instant) -> Option<Verdict> {
        let started = *self.started.get_or_insert(now);
        if let Some(since) = self.waiting_since.take() {
            self.waited += now.saturating_duration_since(since);
        }
        self.bytes += len;
        let elapsed = now.saturating_duration_since(started);
        if elapsed < self.probe {
            return None;
        }
        // A probe of no time (`probe_ms: 0`) has no shares to weigh: the rate alone decides.
        let waited_share = self.waited.as_secs_f64() / elapsed.as_secs_f64().max(1e-9);
        if !elapsed.is_zero() && waited_share < LINK_BOUND_SHARE {
            return Some(Verdict::NotLinkBound { waited_share });
        }
        let rate = u128::from(self.bytes) * 1_000_000 / self.waited.as_micros().max(1);
        let rate = u64::try_from(rate).unwrap_or(u64::MAX);
        Some(if rate < self.capped_below { Verdict::Capped { rate } } else { Verdict::Fast { rate } })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    /// Frames of `frame` bytes every `every`, each after the link kept us waiting for
    /// `waited` of it, until a verdict.
    fn run(frame: u64, every: Duration, waited: Duration) -> Verdict {
        let mut probe = Probe::new(Duration::from_millis(250), 200 * MIB);
        let t0 = Instant::now();
        for i in 0..10_000u32 {
            let at = t0 + every * i;
            if let Some(verdict) = probe.frame(frame, at) {
                return verdict;
            }
            probe.waiting(at + every - waited);
        }
        panic!("no verdict");
    }

    #[test]
    fn a_shaped_link_that_keeps_us_waiting_is_capped() {
        // 25 MB/s: 128 KiB every 5 ms, nearly all of it waiting on the link.
        let verdict = run(128 << 10, Duration::from_millis(5), Duration::from_micros(4_900));
        assert!(matches!(verdict, Verdict::Capped { rate } if rate < 30 * MIB), "{verdict:?}");
    }

    #[test]
    fn a_slow_client_is_not_taken_for_a_slow_link() {
        // 128 KiB/s: 16 KiB every 125 ms, the link answering each read within 1 ms.
        let verdict = run(16 << 10, Duration::from_millis(125), Duration::from_millis(1));
        assert!(matches!(verdict, Verdict::NotLinkBound { .. }), "{verdict:?}");
    }

    #[test]
    fn a_fast_link_is_fast() {
        // 4 MiB every millisecond, waiting half of it: 8 GiB/s over the waits.
        let verdict = run(4 * MIB, Duration::from_millis(1), Duration::from_micros(500));
        assert!(matches!(verdict, Verdict::Fast { .. }), "{verdict:?}");
    }

    #[test]
    fn local_links_never_split_unless_told_a_relay_shapes_them() {
        let at = |s: &str| Some(s.parse::<SocketAddr>().unwrap());
        assert!(!may_split(at("127.0.0.1:5000"), false));
        assert!(!may_split(at("[::1]:5000"), false));
        assert!(!may_split(at("10.1.2.3:443"), false));
        assert!(!may_split(at("192.168.1.10:443"), false));
        assert!(may_split(at("93.184.216.34:443"), false));
        assert!(may_split(at("127.0.0.1:5000"), true));
        assert!(may_split(None, false), "an unknown peer is judged by its rate");
    }
}
