//! [`Owner`]: who a session belongs to, for the per-owner session quota
//! ([`GatewayConfig::max_sessions_per_owner`](super::GatewayConfig::max_sessions_per_owner)).
//!
//! A handler names the owner where the protocol has a login
//! ([`Handler::owner`](super::Handler::owner)); otherwise the engine keys a session on its
//! connection's peer address, an IPv6 peer on its /64 (one subscriber's usual allocation, so
//! that walking through a prefix buys no more sessions).

use std::fmt;
use std::net::{IpAddr, Ipv6Addr};
use std::rc::Rc;

/// Who a session belongs to. Cheap to clone (an address, or a shared name).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Owner {
    /// An IPv4 peer (IPv4-mapped IPv6 addresses included).
    Ipv4(u32),
    /// An IPv6 peer's /64 prefix (its upper 64 bits).
    Ipv6Net(u64),
    /// An identity the application vouches for (a logged-in user).
    User(Rc<str>),
}

impl Owner {
    /// The owner of sessions from `ip`: the address itself for IPv4, the /64 for IPv6.
    #[must_use]
    pub fn from_ip(ip: IpAddr) -> Owner {
        match ip {
            IpAddr::V4(v4) => Owner::Ipv4(u32::from(v4)),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Owner::Ipv4(u32::from(v4)),
                None => Owner::Ipv6Net((u128::from(v6) >> 64) as u64),
            },
        }
    }

    /// The owner named `name` by the application (a user name or id). Only for names
    /// the application has authenticated: a name a client merely claims would let it spend
    /// someone else's quota.
    #[must_use]
    pub fn user(name: &str) -> Owner {
        Owner::User(Rc::from(name))
    }

    /// The owner used when a connection's address is unknown (it is already gone).
    #[must_use]
    pub fn unknown() -> Owner {
        Owner::Ipv6Net(u128::from(Ipv6Addr::UNSPECIFIED) as u64)
    }
}

impl fmt::Debug for Owner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Owner::Ipv4(a) => write!(f, "Ipv4({})", std::net::Ipv4Addr::from(*a)),
            Owner::Ipv6Net(n) => write!(f, "Ipv6Net({:x}::/64)", n),
            Owner::User(name) => write!(f, "User({name:?})"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_is_keyed_on_its_64_and_mapped_ipv4_on_the_address() {
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(Owner::from_ip(a), Owner::from_ip(b));
        assert_ne!(Owner::from_ip(a), Owner::from_ip(c));
        let v4: IpAddr = "192.0.2.7".parse().unwrap();
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(Owner::from_ip(v4), Owner::from_ip(mapped));
        assert_ne!(Owner::from_ip(v4), Owner::user("192.0.2.7"));
        assert_eq!(
            format!("{:?}", Owner::from_ip(c)),
            "Ipv6Net(20010db800010003::/64)"
        );
    }
}
