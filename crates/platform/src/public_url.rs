//! The public base URL of the API (P10): TLS ends outside, so the URL clients use is
//! configured, or told by a trusted reverse proxy.

use std::net::IpAddr;
use std::str::FromStr;

use http::HeaderMap;

/// An IP network such as `10.0.0.0/8` or a single address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNet {
    addr: IpAddr,
    prefix: u8,
}

impl FromStr for IpNet {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| format!("{s:?} is not an IP address or network"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .parse()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("{s:?} has an invalid prefix length"))?,
        };
        Ok(Self { addr, prefix })
    }
}

impl IpNet {
    /// Whether `ip` is inside this network (IPv4-mapped IPv6 addresses count as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                mask_bits(u32::from(net).into(), u32::from(ip).into(), self.prefix, 32)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                mask_bits(u128::from(net), u128::from(ip), self.prefix, 128)
            }
            _ => false,
        }
    }
}

fn mask_bits(net: u128, ip: u128, prefix: u8, width: u8) -> bool {
    if prefix == 0 {
        return true;
    }
    let shift = u32::from(width - prefix);
    (net >> shift) == (ip >> shift)
}

/// Parses `EMBER_TRUSTED_PROXIES`: a comma-separated list of addresses and networks.
pub fn parse_trusted(list: &str) -> Result<Vec<IpNet>, String> {
    list.split(',')
        .filter(|s| !s.trim().is_empty())
        .map(IpNet::from_str)
        .collect()
}

/// How the public base URL is found.
#[derive(Debug, Clone, Default)]
pub struct PublicUrl {
    /// `EMBER_PUBLIC_BASE_URL`: wins when set.
    pub configured: Option<String>,
    /// Proxies whose forwarding headers are believed.
    pub trusted: Vec<IpNet>,
    /// The API's base path, e.g. `/fhir`.
    pub base_path: String,
}

impl PublicUrl {
    /// The absolute base URL for a request from `peer` with `headers`, without a
    /// trailing slash. Forwarding headers from untrusted peers are ignored.
    pub fn resolve(&self, headers: &HeaderMap, peer: Option<IpAddr>) -> String {
        if let Some(url) = &self.configured {
            return url.trim_end_matches('/').to_owned();
        }
        let header = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::trim)
        };
        let mut scheme = "http".to_owned();
        let mut host = header("host")
            .filter(|h| valid_host(h))
            .unwrap_or("localhost")
            .to_owned();
        let mut prefix = String::new();
        if peer.is_some_and(|ip| self.trusted.iter().any(|net| net.contains(ip))) {
            if let Some(forwarded) = header("forwarded") {
                // The first element is the one the outermost proxy added.
                let first = forwarded.split(',').next().unwrap_or_default();
                for pair in first.split(';') {
                    if let Some((k, v)) = pair.trim().split_once('=') {
                        let v = v.trim_matches('"');
                        match k.trim().to_ascii_lowercase().as_str() {
                            "proto" if matches!(v, "http" | "https") => scheme = v.to_owned(),
                            "host" if valid_host(v) => host = v.to_owned(),
                            _ => {}
                        }
                    }
                }
            } else {
                let first = |name: &str| {
                    header(name)
                        .and_then(|v| v.split(',').next())
                        .map(str::trim)
                };
                if let Some(proto) =
                    first("x-forwarded-proto").filter(|p| matches!(*p, "http" | "https"))
                {
                    scheme = proto.to_owned();
                }
                if let Some(h) = first("x-forwarded-host").filter(|h| valid_host(h)) {
                    host = h.to_owned();
                }
                if let Some(port) = first("x-forwarded-port").filter(|p| p.parse::<u16>().is_ok()) {
                    let default =
                        (scheme == "https" && port == "443") || (scheme == "http" && port == "80");
                    let bare = host
                        .rsplit_once(':')
                        .filter(|(_, p)| p.parse::<u16>().is_ok())
                        .map_or(host.as_str(), |(h, _)| h);
                    host = if default {
                        bare.to_owned()
                    } else {
                        format!("{bare}:{port}")
                    };
                }
                if let Some(p) = first("x-forwarded-prefix").filter(|p| valid_path(p)) {
                    prefix = format!("/{}", p.trim_matches('/'));
                    if prefix == "/" {
                        prefix.clear();
                    }
                }
            }
        }
        format!("{scheme}://{host}{prefix}{}", self.base_path)
    }
}

fn valid_host(h: &str) -> bool {
    !h.is_empty()
        && h.len() <= 255
        && h.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-:[]_".contains(&b))
}

fn valid_path(p: &str) -> bool {
    p.len() <= 255
        && p.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/-._~".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::{HeaderName, HeaderValue};

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(k, v)| (HeaderName::from_static(k), HeaderValue::from_static(v)))
            .collect()
    }

    fn proxy_aware() -> PublicUrl {
        PublicUrl {
            configured: None,
            trusted: parse_trusted("10.0.0.0/8, 127.0.0.1").unwrap(),
            base_path: "/fhir".into(),
        }
    }

    #[test]
    fn networks() {
        let net: IpNet = "10.0.0.0/8".parse().unwrap();
        assert!(net.contains("10.1.2.3".parse().unwrap()));
        assert!(!net.contains("11.0.0.1".parse().unwrap()));
        assert!(net.contains("::ffff:10.0.0.1".parse().unwrap()));
        let v6: IpNet = "fd00::/8".parse().unwrap();
        assert!(v6.contains("fd12::1".parse().unwrap()));
        assert!(
            "0.0.0.0/0"
                .parse::<IpNet>()
                .unwrap()
                .contains("8.8.8.8".parse().unwrap())
        );
        assert!("10.0.0.0/33".parse::<IpNet>().is_err());
        assert!(parse_trusted("nonsense").is_err());
        assert_eq!(parse_trusted("").unwrap(), vec![]);
    }

    #[test]
    fn configured_url_wins() {
        let p = PublicUrl {
            configured: Some("https://fhir.example.org/r4/".into()),
            ..proxy_aware()
        };
        let h = headers(&[("host", "internal:8080"), ("x-forwarded-host", "evil")]);
        assert_eq!(
            p.resolve(&h, Some("10.0.0.1".parse().unwrap())),
            "https://fhir.example.org/r4"
        );
    }

    #[test]
    fn believes_trusted_proxies_only() {
        let p = proxy_aware();
        let h = headers(&[
            ("host", "ember:8080"),
            ("x-forwarded-proto", "https"),
            ("x-forwarded-host", "fhir.example.org"),
            ("x-forwarded-port", "443"),
            ("x-forwarded-prefix", "/telemed/"),
        ]);
        assert_eq!(
            p.resolve(&h, Some("10.2.3.4".parse().unwrap())),
            "https://fhir.example.org/telemed/fhir"
        );
        assert_eq!(
            p.resolve(&h, Some("192.168.1.9".parse().unwrap())),
            "http://ember:8080/fhir"
        );
        assert_eq!(p.resolve(&h, None), "http://ember:8080/fhir");
        let h = headers(&[
            ("host", "ember:8080"),
            ("x-forwarded-proto", "https"),
            ("x-forwarded-port", "8443"),
        ]);
        assert_eq!(
            p.resolve(&h, Some("127.0.0.1".parse().unwrap())),
            "https://ember:8443/fhir"
        );
        let h = headers(&[
            ("host", "ember"),
            (
                "forwarded",
                "for=1.2.3.4;proto=https;host=\"a.example\", for=10.0.0.2",
            ),
        ]);
        assert_eq!(
            p.resolve(&h, Some("10.0.0.2".parse().unwrap())),
            "https://a.example/fhir"
        );
        let h = headers(&[("host", "ember"), ("x-forwarded-host", "bad host/../x")]);
        assert_eq!(
            p.resolve(&h, Some("10.0.0.2".parse().unwrap())),
            "http://ember/fhir"
        );
    }
}
