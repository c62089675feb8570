//! A token's network allowlist (issue 21, item 5): the CIDR blocks (IPv4 and IPv6) it may be used
//! from. A leaked token with a list is useful only inside those networks. The client address is
//! the one the server already trusts (`--behind-tls-proxy` rules); an IPv4 address carried as
//! IPv6 (`::ffff:192.0.2.1`) is compared as the IPv4 address it is.

use std::net::IpAddr;

use ipnet::IpNet;

/// Most blocks one token lists.
pub const MAX_BLOCKS: usize = 32;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AllowList(Vec<IpNet>);

impl AllowList {
    /// Parses blocks as a person types them: `10.0.0.0/8`, `2001:db8::/32`, or a bare address
    /// (one host). Each is kept in canonical form (host bits cleared: `10.1.2.3/8` is
    /// `10.0.0.0/8`). An empty list is `None`: no restriction.
    pub fn parse<S: AsRef<str>>(blocks: &[S]) -> Result<Option<AllowList>, String> {
        if blocks.len() > MAX_BLOCKS {
            return Err(format!("at most {MAX_BLOCKS} blocks"));
        }
        let mut nets = Vec::with_capacity(blocks.len());
        for b in blocks {
            let b = b.as_ref().trim();
            let net = match b.parse::<IpNet>() {
                Ok(net) => net,
                Err(_) => match b.parse::<IpAddr>() {
                    Ok(ip) => IpNet::from(canonical(ip)),
                    Err(_) => {
                        let shown: String = b.chars().take(64).collect();
                        return Err(format!("`{shown}` is not an IPv4 or IPv6 address or CIDR block"));
                    }
                },
            };
            let net = net.trunc();
            if !nets.contains(&net) {
                nets.push(net);
            }
        }
        Ok((!nets.is_empty()).then_some(AllowList(nets)))
    }

    /// The stored column: a JSON array of blocks.
    pub fn to_stored(&self) -> String {
        serde_json::to_string(&self.blocks()).unwrap_or_default()
    }

    /// A stored column read back; one that does not parse is a bug or a tampered database.
    pub fn from_stored(text: &str) -> Result<Option<AllowList>, String> {
        let blocks: Vec<String> = serde_json::from_str(text).map_err(|e| format!("stored allowlist: {e}"))?;
        AllowList::parse(&blocks)
    }

    pub fn blocks(&self) -> Vec<String> {
        self.0.iter().map(ToString::to_string).collect()
    }

    /// Whether a call from `ip` (as the server trusts it; `None`: unknown) is allowed.
    pub fn allows(&self, ip: Option<&str>) -> bool {
        let Some(ip) = ip.and_then(|ip| ip.trim().parse::<IpAddr>().ok()) else {
            return false;
        };
        let ip = canonical(ip);
        self.0.iter().any(|net| net.contains(&ip))
    }
}

/// An IPv4-mapped IPv6 address as the IPv4 address it is.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_match_v4_and_v6_and_mapped_addresses() {
        let list = AllowList::parse(&["10.1.2.3/8", "2001:db8::/32", "192.0.2.7"])
            .unwrap()
            .unwrap();
        assert_eq!(list.blocks(), ["10.0.0.0/8", "2001:db8::/32", "192.0.2.7/32"]);
        assert!(list.allows(Some("10.200.0.1")));
        assert!(list.allows(Some("::ffff:10.9.9.9")), "IPv4 carried as IPv6");
        assert!(list.allows(Some("2001:db8:1::5")));
        assert!(list.allows(Some("192.0.2.7")));
        assert!(!list.allows(Some("192.0.2.8")));
        assert!(!list.allows(Some("11.0.0.1")));
        assert!(!list.allows(Some("2001:db9::1")));
        assert!(!list.allows(None), "an unknown address is outside every list");
        assert!(!list.allows(Some("not an ip")));
    }

    #[test]
    fn bad_blocks_are_refused_and_an_empty_list_is_no_list() {
        assert_eq!(AllowList::parse::<&str>(&[]), Ok(None));
        assert!(AllowList::parse(&["10.0.0.0/33"]).is_err());
        assert!(AllowList::parse(&["example.com"]).unwrap_err().contains("example.com"));
        let many: Vec<String> = (0..40).map(|i| format!("10.0.{i}.0/24")).collect();
        assert!(AllowList::parse(&many).is_err());
        let list = AllowList::parse(&["10.0.0.0/8", "10.0.0.0/8"]).unwrap().unwrap();
        assert_eq!(AllowList::from_stored(&list.to_stored()), Ok(Some(list)));
    }
}
