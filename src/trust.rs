//! `trusted_proxies`: the one list of peers whose forwarding headers
//! jwtgate believes (an ingress or load balancer in front of it). Empty by
//! default: every peer is the client itself.

use crate::config::{ConfigError, Origin};
use crate::error::Causes;
use std::net::IpAddr;

/// Why a `trusted_proxies` entry was refused; each quotes the entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CidrError {
    #[error("`{text}` is not an IP address or CIDR block (10.0.0.0/8, fd00::/8)")]
    NotAnAddress {
        text: String,
        #[source]
        source: std::net::AddrParseError,
    },
    #[error("`{text}`: the prefix length must be 0..={max}")]
    Prefix { text: String, max: u8 },
    /// `network/prefix` is the block the entry probably meant.
    #[error("`{text}` has host bits set; did you mean {network}/{prefix}?")]
    HostBits { text: String, network: IpAddr, prefix: u8 },
}

/// The `trusted_proxies` list, each entry checked.
pub fn compile(blocks: &[String], origin: &Origin<'_>) -> Result<TrustedProxies, ConfigError> {
    blocks
        .iter()
        .enumerate()
        .map(|(i, block)| {
            Cidr::parse(block)
                .map_err(|e| ConfigError::at(origin, format!("trusted_proxies[{i}]"), Causes(&e).to_string()))
        })
        .collect::<Result<Vec<_>, _>>()
        .map(TrustedProxies::new)
}

/// An address block, `10.0.0.0/8` or `2001:db8::/32` (a bare address is
/// a block of one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl Cidr {
    pub fn parse(text: &str) -> Result<Self, CidrError> {
        let (addr, prefix) = match text.trim().split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (text.trim(), None),
        };
        let network: IpAddr =
            addr.parse().map_err(|source| CidrError::NotAnAddress { text: text.to_string(), source })?;
        let network = network.to_canonical();
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| CidrError::Prefix { text: text.to_string(), max })?,
        };
        if mask(network, prefix) != network {
            return Err(CidrError::HostBits { text: text.to_string(), network: mask(network, prefix), prefix });
        }
        Ok(Self { network, prefix })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        ip.is_ipv4() == self.network.is_ipv4() && mask(ip, self.prefix) == self.network
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

fn mask(ip: IpAddr, prefix: u8) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => {
            let bits = u32::from(v4) & u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V4(bits.into())
        }
        IpAddr::V6(v6) => {
            let bits = u128::from(v6) & u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V6(bits.into())
        }
    }
}

/// The trusted peers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<Cidr>);

impl TrustedProxies {
    pub fn new(blocks: Vec<Cidr>) -> Self {
        Self(blocks)
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|c| c.contains(ip))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn blocks(&self) -> &[Cidr] {
        &self.0
    }

    /// The client as the chain tells it: walking `X-Forwarded-For` from the
    /// right, the first address that is not a trusted proxy (nginx's
    /// `real_ip_recursive`). `peer` when the chain is empty or all trusted
    /// entries end in garbage.
    pub fn client_from_chain<'a>(&self, peer: IpAddr, chain: impl DoubleEndedIterator<Item = &'a str>) -> IpAddr {
        if !self.contains(peer) {
            return peer;
        }
        let mut client = peer;
        for entry in chain.rev() {
            let Ok(ip) = entry.trim().parse::<IpAddr>() else { return client };
            client = ip;
            if !self.contains(ip) {
                return ip;
            }
        }
        client
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn blocks_contain_their_addresses_only() {
        let v4 = Cidr::parse("10.1.0.0/16").unwrap();
        assert!(v4.contains(ip("10.1.255.3")));
        assert!(v4.contains(ip("::ffff:10.1.0.9")), "v4-mapped peers of a dual-stack listener");
        assert!(!v4.contains(ip("10.2.0.1")));
        let v6 = Cidr::parse("fd00::/8").unwrap();
        assert!(v6.contains(ip("fd12::1")) && !v6.contains(ip("fe80::1")));
        assert!(Cidr::parse("127.0.0.1").unwrap().contains(ip("127.0.0.1")));
        assert!(Cidr::parse("0.0.0.0/0").unwrap().contains(ip("203.0.113.9")));
        for bad in ["10.1.0.1/16", "10.0.0.0/33", "example.com", "10.0.0.0/x", ""] {
            assert!(Cidr::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn refusals_quote_the_entry_and_say_why() {
        let err = Cidr::parse("10.1.0.1/16").unwrap_err();
        assert_eq!(err.to_string(), "`10.1.0.1/16` has host bits set; did you mean 10.1.0.0/16?");
        assert_eq!(
            Cidr::parse("10.0.0.0/33").unwrap_err().to_string(),
            "`10.0.0.0/33`: the prefix length must be 0..=32"
        );
        let err = Cidr::parse("example.com").unwrap_err();
        assert!(matches!(&err, CidrError::NotAnAddress { text, .. } if text == "example.com"), "{err:?}");
        let chain = Causes(&err).to_string();
        assert!(
            chain.starts_with("`example.com` is not an IP address or CIDR block")
                && chain.ends_with(": invalid IP address syntax"),
            "{chain}"
        );
    }

    #[test]
    fn the_client_is_the_rightmost_untrusted_entry() {
        let trusted = TrustedProxies::new(vec![Cidr::parse("10.0.0.0/8").unwrap()]);
        let chain = ["203.0.113.66", "198.51.100.7", "10.0.0.5"];
        assert_eq!(trusted.client_from_chain(ip("10.0.0.1"), chain.into_iter()), ip("198.51.100.7"));
        assert_eq!(trusted.client_from_chain(ip("192.0.2.1"), chain.into_iter()), ip("192.0.2.1"), "untrusted peer");
        assert_eq!(trusted.client_from_chain(ip("10.0.0.1"), ["garbage"].into_iter()), ip("10.0.0.1"));
        assert_eq!(trusted.client_from_chain(ip("10.0.0.1"), ["10.0.0.2"].into_iter()), ip("10.0.0.2"));
    }
}
