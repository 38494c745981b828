//! Who the client is on the network: the socket peer, or, behind a
//! configured trusted proxy, the address that proxy reports
//! (`api.trustedProxies`, `api.clientIpHeader`). Rate limits count
//! anonymous callers by it and the audit log names it.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, Request};
use axum::http::{HeaderMap, HeaderName};
use dbapi_crds::config::ApiSettings;
use ipnet::IpNet;

/// How the client's address is found: the socket peer, or, when the peer
/// is a trusted proxy, the address that proxy reports in `header`.
#[derive(Debug, Clone)]
pub struct ClientIp {
    trusted: Vec<IpNet>,
    header: HeaderName,
}

impl ClientIp {
    pub fn new(api: &ApiSettings) -> Result<ClientIp, String> {
        let trusted = api
            .trusted_proxies
            .iter()
            .map(|p| {
                p.parse::<IpNet>()
                    .or_else(|_| p.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| format!("api.trustedProxies: {p:?} is neither a CIDR (10.0.0.0/8) nor an address"))
            })
            .collect::<Result<_, _>>()?;
        let header = HeaderName::try_from(api.client_ip_header.as_str())
            .map_err(|_| format!("api.clientIpHeader: {:?} is not a header name", api.client_ip_header))?;
        Ok(ClientIp { trusted, header })
    }

    fn is_trusted(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.trusted.iter().any(|net| net.contains(&ip))
    }

    /// The client's address. From an untrusted peer, the peer. From a
    /// trusted one, the header's addresses are read right to left (the
    /// nearest hop first, over every line of the header) and the first
    /// that is not a trusted proxy is the client; an entry that is not an
    /// address ends the walk at the last trusted hop, so a forged or
    /// garbled value never names someone else.
    pub fn resolve(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let peer = peer.to_canonical();
        if !self.is_trusted(peer) {
            return peer;
        }
        let mut nearest = peer;
        for line in headers.get_all(&self.header).iter().rev() {
            let Ok(text) = line.to_str() else { return nearest };
            for entry in text.rsplit(',') {
                let Some(ip) = parse_hop(entry.trim()) else { return nearest };
                if !self.is_trusted(ip) {
                    return ip;
                }
                nearest = ip;
            }
        }
        nearest
    }
}

/// The client's address, resolved once per request by
/// [`ClientIp::attach`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub IpAddr);

impl ClientAddr {
    /// The address [`ClientIp::attach`] left, or `0.0.0.0` without one.
    pub fn of(extensions: &axum::http::Extensions) -> IpAddr {
        extensions.get::<ClientAddr>().map_or(IpAddr::from([0, 0, 0, 0]), |c| c.0)
    }
}

impl ClientIp {
    /// Leaves the request's [`ClientAddr`] in its extensions. Without a
    /// peer address (a router called in-process) every call is `0.0.0.0`.
    pub fn attach(&self, request: &mut Request) {
        let peer = request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map_or(IpAddr::from([0, 0, 0, 0]), |ConnectInfo(addr)| addr.ip());
        let client = self.resolve(peer, request.headers());
        request.extensions_mut().insert(ClientAddr(client));
    }
}

/// `1.2.3.4`, `1.2.3.4:5678`, `2001:db8::1` or `[2001:db8::1]:443`.
fn parse_hop(entry: &str) -> Option<IpAddr> {
    entry
        .parse::<IpAddr>()
        .or_else(|_| entry.parse::<SocketAddr>().map(|s| s.ip()))
        .ok()
        .or_else(|| entry.strip_prefix('[')?.strip_suffix(']')?.parse().ok())
        .map(|ip: IpAddr| ip.to_canonical())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn clients(trusted: &[&str], header: &str) -> ClientIp {
        let api = ApiSettings {
            trusted_proxies: trusted.iter().map(|s| s.to_string()).collect(),
            client_ip_header: header.into(),
            ..ApiSettings::default()
        };
        ClientIp::new(&api).unwrap()
    }

    fn headers(name: &'static str, values: &[&'static str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(name, HeaderValue::from_static(v));
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn the_header_counts_only_from_a_trusted_peer() {
        let c = clients(&["10.0.0.0/8", "192.168.1.7"], "X-Forwarded-For");
        let xff = headers("x-forwarded-for", &["203.0.113.9"]);
        // An untrusted peer's header is ignored.
        assert_eq!(c.resolve(ip("198.51.100.1"), &xff), ip("198.51.100.1"));
        assert_eq!(c.resolve(ip("10.1.2.3"), &xff), ip("203.0.113.9"));
        assert_eq!(c.resolve(ip("192.168.1.7"), &xff), ip("203.0.113.9"));
        assert_eq!(c.resolve(ip("192.168.1.8"), &xff), ip("192.168.1.8"));
        // No header: the proxy itself.
        assert_eq!(c.resolve(ip("10.1.2.3"), &HeaderMap::new()), ip("10.1.2.3"));
        // Nobody trusted: always the peer.
        assert_eq!(clients(&[], "X-Forwarded-For").resolve(ip("10.1.2.3"), &xff), ip("10.1.2.3"));
    }

    #[test]
    fn the_right_most_untrusted_hop_is_the_client() {
        let c = clients(&["10.0.0.0/8"], "X-Forwarded-For");
        // The client can forge the left part, never the hops our proxies add.
        let h = headers("x-forwarded-for", &["1.1.1.1, 203.0.113.9, 10.0.0.2"]);
        assert_eq!(c.resolve(ip("10.0.0.1"), &h), ip("203.0.113.9"));
        // Over several header lines, the last line is the nearest.
        let h = headers("x-forwarded-for", &["1.1.1.1, 203.0.113.9", "10.0.0.3,10.0.0.2"]);
        assert_eq!(c.resolve(ip("10.0.0.1"), &h), ip("203.0.113.9"));
        // Every hop trusted: the farthest one.
        let h = headers("x-forwarded-for", &["10.9.9.9, 10.0.0.2"]);
        assert_eq!(c.resolve(ip("10.0.0.1"), &h), ip("10.9.9.9"));
        // Garbage stops the walk at the last trusted hop.
        let h = headers("x-forwarded-for", &["203.0.113.9, unknown, 10.0.0.2"]);
        assert_eq!(c.resolve(ip("10.0.0.1"), &h), ip("10.0.0.2"));
        // Ports, brackets, IPv6 and IPv4-mapped addresses.
        let h = headers("x-forwarded-for", &["[2001:db8::1]:443, 203.0.113.9:5678"]);
        assert_eq!(c.resolve(ip("::ffff:10.0.0.1"), &h), ip("203.0.113.9"));
        let h = headers("x-forwarded-for", &["2001:db8::1"]);
        assert_eq!(c.resolve(ip("10.0.0.1"), &h), ip("2001:db8::1"));
    }

    #[test]
    fn another_header_can_be_configured() {
        let c = clients(&["127.0.0.1/32"], "X-Real-IP");
        let h = headers("x-real-ip", &["203.0.113.9"]);
        assert_eq!(c.resolve(ip("127.0.0.1"), &h), ip("203.0.113.9"));
        let xff = headers("x-forwarded-for", &["203.0.113.9"]);
        assert_eq!(c.resolve(ip("127.0.0.1"), &xff), ip("127.0.0.1"));
    }

    #[test]
    fn bad_settings_name_their_key() {
        let mut api = ApiSettings { trusted_proxies: vec!["10.0.0.0/33".into()], ..ApiSettings::default() };
        assert!(ClientIp::new(&api).unwrap_err().contains("api.trustedProxies"));
        api.trusted_proxies = vec![];
        api.client_ip_header = "bad header".into();
        assert!(ClientIp::new(&api).unwrap_err().contains("api.clientIpHeader"));
    }
}
