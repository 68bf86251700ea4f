//! Per-address limits: how many sockets one source address holds, and how fast it opens
//! new ones. Counted from accept, whatever the socket's phase, so silent sockets count too.
//!
//! IPv6 peers are keyed on a prefix ([`Config::ipv6_prefix`](crate::Config), a /64 by
//! default): one host is usually given a whole /64 and can pick any address in it.

use super::app::App;
use super::core::Core;
use crate::rate::TokenBucket;
use crate::time::Millis;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};

/// What the reactor remembers about one source address.
#[derive(Debug)]
pub(crate) struct PerIp {
    /// Sockets it holds now.
    pub sockets: u32,
    /// Its new-connection allowance.
    pub bucket: TokenBucket,
}

/// One second: the window of the per-address connection rate.
pub(crate) const RATE_WINDOW: Millis = Millis(1_000);
/// How often addresses with no socket are forgotten.
const SWEEP_EVERY: Millis = Millis(5_000);

/// The verdict on a new socket's source address.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum AddressVerdict {
    /// Not limited (loopback, unless `limit_loopback`): not counted.
    Exempt,
    /// Within the limits: counted until the socket is removed.
    Counted,
    /// Over a limit (sockets held or connection rate): answer 429 and close, not counted.
    Refused,
}

/// The key a peer is counted under: IPv4 as is (an IPv4-mapped IPv6 address as the IPv4
/// address it maps), IPv6 with all but its first `prefix` bits cleared.
pub fn address_key(ip: IpAddr, prefix: u8) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let bits = u128::from(v6);
                let mask = match u32::from(prefix.min(128)) {
                    0 => 0,
                    n => u128::MAX << (128 - n),
                };
                IpAddr::V6(Ipv6Addr::from(bits & mask))
            }
        },
    }
}

impl<A: App> Core<A> {
    /// Judges a new socket from `peer` against the per-address limits, counting it when it
    /// is within them.
    pub fn admit_address(&mut self, peer: SocketAddr) -> AddressVerdict {
        let ip = peer.ip();
        if ip.is_loopback() && !self.config.limit_loopback {
            return AddressVerdict::Exempt;
        }
        let key = address_key(ip, self.config.ipv6_prefix);
        let rate = self.config.new_connections_per_ip;
        let now = self.now;
        let per = self.per_ip.entry(key).or_insert_with(|| PerIp {
            sockets: 0,
            bucket: TokenBucket::full(now, rate, RATE_WINDOW),
        });
        let within = (per.sockets as usize) < self.config.max_connections_per_ip
            && per.bucket.take(now, rate, RATE_WINDOW);
        if within {
            per.sockets += 1;
        }
        self.arm_sweep();
        if within {
            AddressVerdict::Counted
        } else {
            AddressVerdict::Refused
        }
    }

    /// Takes back the count of a counted socket (removed, or never given a slot).
    pub fn forget_address(&mut self, peer: SocketAddr) {
        let key = address_key(peer.ip(), self.config.ipv6_prefix);
        if let Some(per) = self.per_ip.get_mut(&key) {
            per.sockets = per.sockets.saturating_sub(1);
        }
    }

    /// Forgets addresses that hold no socket and whose rate bucket is full again.
    pub fn sweep_addresses(&mut self) {
        let (now, rate) = (self.now, self.config.new_connections_per_ip);
        self.per_ip
            .retain(|_, per| per.sockets > 0 || !per.bucket.is_full(now, rate, RATE_WINDOW));
        self.arm_sweep();
    }

    fn arm_sweep(&mut self) {
        if !self.sweep_armed && !self.per_ip.is_empty() {
            self.sweep_armed = true;
            let at = self.now + SWEEP_EVERY;
            self.wheel
                .insert(at, super::core::TimerTarget::SweepAddresses);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(ip: &str, prefix: u8) -> String {
        address_key(ip.parse().unwrap(), prefix).to_string()
    }

    #[test]
    fn ipv6_peers_are_keyed_on_their_prefix_and_ipv4_as_is() {
        // Two addresses of one /64 are one peer; another /64 is another.
        assert_eq!(key("2001:db8:1:2:aaaa::1", 64), "2001:db8:1:2::");
        assert_eq!(key("2001:db8:1:2:ffff:1:2:3", 64), "2001:db8:1:2::");
        assert_eq!(key("2001:db8:1:3::1", 64), "2001:db8:1:3::");
        // Other prefix lengths, including the edges.
        assert_eq!(key("2001:db8:1:2:aaaa::1", 128), "2001:db8:1:2:aaaa::1");
        assert_eq!(key("2001:db8:1:2:aaaa::1", 48), "2001:db8:1::");
        assert_eq!(key("2001:db8:1:2:aaaa::1", 0), "::");
        assert_eq!(key("2001:db8:1:2:aaaa::1", 200), "2001:db8:1:2:aaaa::1");
        assert_eq!(key("::1", 64), "::");
        // IPv4, and IPv4 mapped into IPv6 (a dual-stack listener), are keyed per address.
        assert_eq!(key("192.0.2.7", 64), "192.0.2.7");
        assert_eq!(key("::ffff:192.0.2.7", 64), "192.0.2.7");
    }
}
