//! SSRF guard: refuse deliveries to private and otherwise internal addresses.
//!
//! Webhook URLs are configuration that may come from less trusted people than
//! the operator of this daemon. Without a guard, a URL such as
//! `http://169.254.169.254/latest/meta-data/` or `http://10.0.0.5:8080/admin`
//! would make the daemon send requests into its own network (server-side
//! request forgery). So, unless the operator sets
//! `[delivery] allow_private_targets = true`, deliveries may only reach
//! public addresses.
//!
//! The check happens *after* DNS resolution, in [`GuardedResolver`], so a
//! public hostname that resolves to a private address is refused too, and
//! the address checked is the address connected to (no second lookup an
//! attacker could answer differently). URLs whose host is an IP literal never
//! reach the resolver, which is why [`check_url`] must be called on every
//! URL before sending.
//!
//! For the guard to be complete the HTTP client must also be built without a
//! proxy (`no_proxy()`, a proxy resolves names itself) and without following
//! redirects (`redirect::Policy::none()`, a redirect target would bypass
//! [`check_url`]).

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Hint appended to every refusal so the operator knows the way out.
const ALLOW_HINT: &str = "set [delivery] allow_private_targets = true to allow";

/// Why a webhook target is refused or unreachable.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    /// The URL scheme is neither `http` nor `https`.
    #[error("unsupported URL scheme {0:?}: webhook URLs must start with http:// or https://")]
    UnsupportedScheme(String),
    /// The URL has no host part.
    #[error("webhook URL has no host: use an absolute URL such as https://example.com/webhook")]
    NoHost,
    /// The host is, or resolves only to, an address webhooks may not reach.
    #[error("refusing to deliver to {host}: it resolves to {addr}, a private, loopback, link-local or otherwise internal address; if this target is intended, {ALLOW_HINT}")]
    Forbidden {
        /// Host as written in the URL.
        host: String,
        /// The (first) forbidden address.
        addr: IpAddr,
    },
    /// DNS resolution failed.
    #[error("could not resolve {host}: {source}; check the hostname in the webhook URL and this machine's DNS configuration")]
    Resolve {
        /// Host that failed to resolve.
        host: String,
        /// Underlying resolver error.
        #[source]
        source: io::Error,
    },
    /// DNS resolution succeeded but returned no addresses.
    #[error("{host} resolved to no addresses: check its DNS records")]
    NoAddresses {
        /// Host that resolved to nothing.
        host: String,
    },
}

/// True for addresses a webhook must not reach by default: unspecified, loopback, private (10/8, 172.16/12, 192.168/16), CGNAT 100.64/10, link-local (169.254/16 incl. cloud metadata 169.254.169.254), broadcast, multicast, documentation/benchmark ranges, 0/8, IPv6 loopback/unspecified, unique-local fc00::/7, link-local fe80::/10, multicast, AWS IPv6 metadata fd00:ec2::254 (in ULA), and IPv4-mapped/compat IPv6 addresses whose IPv4 is forbidden (::ffff:127.0.0.1), NAT64 64:ff9b::/96 with a forbidden embedded v4.
///
/// Also refused: IETF protocol assignments 192.0.0.0/24, the deprecated
/// 6to4 relay anycast 192.88.99.0/24, reserved 240.0.0.0/4, IPv6
/// site-local fec0::/10, discard-only 100::/64, local-use NAT64
/// 64:ff9b:1::/48, documentation 2001:db8::/32 and 3fff::/20, benchmarking
/// 2001:2::/48, IPv4-translated ::ffff:0:0:0/96 with a forbidden IPv4,
/// 6to4 2002::/16 whose embedded IPv4 is forbidden, and Teredo 2001::/32
/// whose client IPv4 is forbidden.
pub fn is_forbidden(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4_forbidden(v4),
        IpAddr::V6(v6) => v6_forbidden(v6),
    }
}

/// Forbidden IPv4 networks as (network, prefix length).
const V4_FORBIDDEN: &[(u32, u32)] = &[
    (0x0000_0000, 8),  // 0.0.0.0/8 "this network", incl. unspecified
    (0x0A00_0000, 8),  // 10.0.0.0/8 private
    (0x6440_0000, 10), // 100.64.0.0/10 carrier-grade NAT
    (0x7F00_0000, 8),  // 127.0.0.0/8 loopback
    (0xA9FE_0000, 16), // 169.254.0.0/16 link-local, cloud metadata
    (0xAC10_0000, 12), // 172.16.0.0/12 private
    (0xC000_0000, 24), // 192.0.0.0/24 IETF protocol assignments
    (0xC000_0200, 24), // 192.0.2.0/24 TEST-NET-1
    (0xC058_6300, 24), // 192.88.99.0/24 6to4 relay anycast (deprecated)
    (0xC0A8_0000, 16), // 192.168.0.0/16 private
    (0xC612_0000, 15), // 198.18.0.0/15 benchmarking
    (0xC633_6400, 24), // 198.51.100.0/24 TEST-NET-2
    (0xCB00_7100, 24), // 203.0.113.0/24 TEST-NET-3
    (0xE000_0000, 4),  // 224.0.0.0/4 multicast
    (0xF000_0000, 4),  // 240.0.0.0/4 reserved, incl. broadcast 255.255.255.255
];

/// Forbidden IPv6 networks (embedded-IPv4 ranges are handled separately).
const V6_FORBIDDEN: &[(u128, u32)] = &[
    (0, 128),                                        // :: unspecified
    (1, 128),                                        // ::1 loopback
    (0x0064_ff9b_0001_0000_0000_0000_0000_0000, 48), // 64:ff9b:1::/48 local-use NAT64
    (0x0100_0000_0000_0000_0000_0000_0000_0000, 64), // 100::/64 discard-only
    (0x2001_0002_0000_0000_0000_0000_0000_0000, 48), // 2001:2::/48 benchmarking
    (0x2001_0db8_0000_0000_0000_0000_0000_0000, 32), // 2001:db8::/32 documentation
    (0x3fff_0000_0000_0000_0000_0000_0000_0000, 20), // 3fff::/20 documentation
    (0xfc00_0000_0000_0000_0000_0000_0000_0000, 7),  // fc00::/7 unique-local, incl. fd00:ec2::254
    (0xfe80_0000_0000_0000_0000_0000_0000_0000, 10), // fe80::/10 link-local
    (0xfec0_0000_0000_0000_0000_0000_0000_0000, 10), // fec0::/10 site-local (deprecated)
    (0xff00_0000_0000_0000_0000_0000_0000_0000, 8),  // ff00::/8 multicast
];

fn v4_forbidden(ip: Ipv4Addr) -> bool {
    let a = u32::from(ip);
    V4_FORBIDDEN.iter().any(|&(net, len)| {
        let mask = u32::MAX.checked_shl(32 - len).unwrap_or(0);
        a & mask == net & mask
    })
}

fn v6_in(a: u128, net: u128, len: u32) -> bool {
    let mask = u128::MAX.checked_shl(128 - len).unwrap_or(0);
    a & mask == net & mask
}

fn v6_forbidden(ip: Ipv6Addr) -> bool {
    let a = u128::from(ip);
    if V6_FORBIDDEN.iter().any(|&(net, len)| v6_in(a, net, len)) {
        return true;
    }
    // Low 32 bits as IPv4: IPv4-mapped ::ffff:0:0/96, IPv4-compatible ::/96,
    // IPv4-translated ::ffff:0:0:0/96 and NAT64 64:ff9b::/96.
    let low = Ipv4Addr::from((a & 0xffff_ffff) as u32);
    const EMBEDDED_LOW: &[u128] = &[
        0x0000_0000_0000_0000_0000_ffff_0000_0000,
        0,
        0x0000_0000_0000_0000_ffff_0000_0000_0000,
        0x0064_ff9b_0000_0000_0000_0000_0000_0000,
    ];
    if EMBEDDED_LOW.iter().any(|&net| v6_in(a, net, 96)) {
        return v4_forbidden(low);
    }
    // 6to4 2002:V4ADDR::/48.
    if v6_in(a, 0x2002_0000_0000_0000_0000_0000_0000_0000, 16) {
        return v4_forbidden(Ipv4Addr::from(((a >> 80) & 0xffff_ffff) as u32));
    }
    // Teredo 2001:0:SERVER:FLAGS:PORT:CLIENT, client address bit-inverted.
    if v6_in(a, 0x2001_0000_0000_0000_0000_0000_0000_0000, 32) {
        return v4_forbidden(Ipv4Addr::from(!((a & 0xffff_ffff) as u32)));
    }
    false
}

/// Checks scheme (http/https only) and, for an IP-literal host, the address (when !allow_private). Hostnames are checked by the resolver below.
pub fn check_url(url: &url::Url, allow_private: bool) -> Result<(), TargetError> {
    match url.scheme() {
        "http" | "https" => {}
        other => return Err(TargetError::UnsupportedScheme(other.to_owned())),
    }
    let addr = match url.host() {
        None => return Err(TargetError::NoHost),
        Some(url::Host::Domain("")) => return Err(TargetError::NoHost),
        Some(url::Host::Domain(_)) => return Ok(()),
        Some(url::Host::Ipv4(v4)) => IpAddr::V4(v4),
        Some(url::Host::Ipv6(v6)) => IpAddr::V6(v6),
    };
    if !allow_private && is_forbidden(addr) {
        let host = url.host_str().unwrap_or_default().to_owned();
        return Err(TargetError::Forbidden { host, addr });
    }
    Ok(())
}

/// Resolves `host` and, unless `allow_private`, keeps only permitted
/// addresses. Ports in the result are 0 (reqwest fills in the URL's port).
///
/// Fails with [`TargetError::Forbidden`] (naming the first address) when
/// every address is forbidden, [`TargetError::NoAddresses`] when there are
/// none at all, and [`TargetError::Resolve`] when the lookup fails.
pub async fn resolve_guarded(
    host: &str,
    allow_private: bool,
) -> Result<Vec<SocketAddr>, TargetError> {
    let all: Vec<SocketAddr> = tokio::net::lookup_host((host, 0))
        .await
        .map_err(|source| TargetError::Resolve {
            host: host.to_owned(),
            source,
        })?
        .collect();
    let Some(first) = all.first().copied() else {
        return Err(TargetError::NoAddresses {
            host: host.to_owned(),
        });
    };
    if allow_private {
        return Ok(all);
    }
    let allowed: Vec<SocketAddr> = all.into_iter().filter(|a| !is_forbidden(a.ip())).collect();
    if allowed.is_empty() {
        return Err(TargetError::Forbidden {
            host: host.to_owned(),
            addr: first.ip(),
        });
    }
    Ok(allowed)
}

/// A reqwest DNS resolver that resolves with tokio::net::lookup_host and, unless allow_private, drops forbidden addresses; if none remain, fails with TargetError::Forbidden naming the host and first address and saying: set `[delivery] allow_private_targets = true` to allow.
///
/// Install it with `reqwest::ClientBuilder::dns_resolver(Arc::new(GuardedResolver { .. }))`.
#[derive(Debug, Clone, Copy, Default)]
pub struct GuardedResolver {
    /// Skip the address check (`[delivery] allow_private_targets`).
    pub allow_private: bool,
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let allow_private = self.allow_private;
        let host = name.as_str().to_owned();
        Box::pin(async move {
            match resolve_guarded(&host, allow_private).await {
                Ok(addrs) => Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs),
                Err(e) => Err(Box::new(e) as Box<dyn std::error::Error + Send + Sync>),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::dns::Resolve as _;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("test address")
    }

    #[test]
    fn address_table() {
        let forbidden = [
            "0.0.0.0",
            "0.1.2.3",
            "10.0.0.1",
            "10.255.255.255",
            "100.64.0.1",
            "100.127.255.255",
            "127.0.0.1",
            "127.255.255.254",
            "169.254.0.1",
            "169.254.169.254",
            "172.16.0.1",
            "172.31.255.255",
            "192.0.0.8",
            "192.0.2.1",
            "192.88.99.1",
            "192.168.0.1",
            "192.168.255.255",
            "198.18.0.1",
            "198.19.255.255",
            "198.51.100.7",
            "203.0.113.9",
            "224.0.0.1",
            "239.255.255.250",
            "240.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "fc00::1",
            "fd00::1",
            "fd00:ec2::254",
            "fe80::1",
            "febf::1",
            "fec0::1",
            "ff02::1",
            "ff0e::1",
            "2001:db8::1",
            "3fff::1",
            "100::1",
            "2001:2::1",
            "64:ff9b:1::1",
            "::ffff:127.0.0.1",
            "::ffff:10.1.2.3",
            "::ffff:169.254.169.254",
            "::127.0.0.1",
            "::ffff:0:192.168.1.1",
            "64:ff9b::10.0.0.1",
            "64:ff9b::7f00:1",
            "2002:7f00:1::1",
            "2002:c0a8:101::",
            "2001:0:4136:e378:8000:63bf:80ff:fffe",
        ];
        for a in forbidden {
            assert!(is_forbidden(ip(a)), "{a} should be forbidden");
        }
        let allowed = [
            "8.8.8.8",
            "1.1.1.1",
            "9.255.255.255",
            "11.0.0.1",
            "100.63.255.255",
            "100.128.0.1",
            "126.255.255.255",
            "128.0.0.1",
            "169.253.255.255",
            "172.15.255.255",
            "172.32.0.1",
            "192.0.1.1",
            "192.167.255.255",
            "192.169.0.1",
            "198.17.255.255",
            "198.20.0.1",
            "203.0.114.1",
            "223.255.255.255",
            "93.184.215.14",
            "2606:4700::1111",
            "2001:4860:4860::8888",
            "2a00:1450:4001::1",
            "fbff::1",
            "fe7f::1",
            "::ffff:8.8.8.8",
            "::8.8.8.8",
            "64:ff9b::8.8.8.8",
            "64:ff9b::101:101",
            "2002:808:808::1",
            "2001:0:4136:e378:8000:63bf:f7f7:f7f7",
        ];
        for a in allowed {
            assert!(!is_forbidden(ip(a)), "{a} should be allowed");
        }
    }

    fn url(s: &str) -> url::Url {
        url::Url::parse(s).expect("test URL")
    }

    #[test]
    fn check_url_cases() {
        assert!(check_url(&url("https://example.com/hook"), false).is_ok());
        assert!(check_url(&url("http://example.com:8080/hook"), false).is_ok());
        // Hostnames are left to the resolver, even "localhost".
        assert!(check_url(&url("http://localhost/hook"), false).is_ok());
        assert!(check_url(&url("https://8.8.8.8/hook"), false).is_ok());
        assert!(check_url(&url("https://[2606:4700::1111]/hook"), false).is_ok());

        for (u, addr) in [
            ("http://127.0.0.1/", "127.0.0.1"),
            (
                "http://169.254.169.254/latest/meta-data/",
                "169.254.169.254",
            ),
            ("http://[::1]:8080/", "::1"),
            ("http://[::ffff:10.0.0.1]/", "10.0.0.1"),
            ("http://[fd00:ec2::254]/", "fd00:ec2::254"),
            // Numeric forms the URL parser normalises to 127.0.0.1.
            ("http://2130706433/", "127.0.0.1"),
            ("http://0x7f.1/", "127.0.0.1"),
        ] {
            match check_url(&url(u), false) {
                Err(TargetError::Forbidden { addr: got, .. }) => {
                    // ::ffff:10.0.0.1 is kept as IPv6 by the parser.
                    let want = ip(addr);
                    assert!(
                        got == want
                            || got
                                == IpAddr::V6(match want {
                                    IpAddr::V4(v4) => v4.to_ipv6_mapped(),
                                    IpAddr::V6(v6) => v6,
                                }),
                        "{u}: {got}"
                    );
                }
                other => panic!("{u}: expected Forbidden, got {other:?}"),
            }
            assert!(check_url(&url(u), true).is_ok(), "{u} with allow_private");
        }

        let err = check_url(&url("http://10.0.0.5/"), false).expect_err("forbidden");
        let msg = err.to_string();
        assert!(
            msg.contains("10.0.0.5") && msg.contains("allow_private_targets = true"),
            "{msg}"
        );

        for u in [
            "ftp://example.com/",
            "file:///etc/passwd",
            "gopher://127.0.0.1/",
        ] {
            assert!(
                matches!(
                    check_url(&url(u), true),
                    Err(TargetError::UnsupportedScheme(_))
                ),
                "{u}"
            );
        }
        assert!(
            matches!(check_url(&url("unix:/run/x.sock"), true), Err(TargetError::UnsupportedScheme(s)) if s == "unix")
        );
    }

    #[tokio::test]
    async fn resolver_refuses_localhost_unless_allowed() {
        let name: reqwest::dns::Name = "localhost".parse().expect("name");
        let err = GuardedResolver {
            allow_private: false,
        }
        .resolve(name)
        .await
        .err()
        .expect("localhost must be refused");
        let target = err.downcast_ref::<TargetError>().expect("TargetError");
        match target {
            TargetError::Forbidden { host, addr } => {
                assert_eq!(host, "localhost");
                assert!(addr.is_loopback(), "{addr}");
            }
            other => panic!("expected Forbidden, got {other:?}"),
        }
        assert!(err
            .to_string()
            .contains("set [delivery] allow_private_targets = true to allow"));

        let name: reqwest::dns::Name = "localhost".parse().expect("name");
        let addrs: Vec<SocketAddr> = GuardedResolver {
            allow_private: true,
        }
        .resolve(name)
        .await
        .expect("allowed")
        .collect();
        assert!(!addrs.is_empty());
        assert!(addrs.iter().all(|a| a.ip().is_loopback()), "{addrs:?}");
    }

    #[tokio::test]
    async fn resolver_checks_ip_names_without_network() {
        let err = resolve_guarded("169.254.169.254", false)
            .await
            .expect_err("refused");
        assert!(
            matches!(err, TargetError::Forbidden { addr, .. } if addr == ip("169.254.169.254"))
        );
        let ok = resolve_guarded("8.8.8.8", false).await.expect("public");
        assert_eq!(ok, vec![SocketAddr::new(ip("8.8.8.8"), 0)]);
    }
}
