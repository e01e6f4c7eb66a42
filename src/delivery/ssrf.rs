//! SSRF guard: refuse deliveries to private and otherwise internal addresses.
//!
//! Webhook URLs are configuration that may come from less trusted people than
//! the operator of this daemon. Without a guard, a URL such as
//! `http://169.254.169.254/latest/meta-data/` or `http://10.0.0.5:8080/admin`
//! would make the daemon send requests into its own network (server-side
//! request forgery). So, unless the operator sets
//! `[delivery] allow_private_targets = true`, deliveries may only reach
//! public addresses; with `[delivery] https_only = true`, only over https.
//!
//! The check happens *after* DNS resolution, in [`GuardedResolver`], so a
//! public hostname that resolves to a private address is refused too, and
//! the address checked is the address connected to (no second lookup an
//! attacker could answer differently). URLs whose host is an IP literal never
//! reach the resolver, which is why [`check_url`] must be called on every
//! URL before sending. The URL parser has already turned the numeric tricks
//! (`127.1`, `2130706433`, `0x7f000001`, `0177.0.0.1`) into the address they
//! mean, so [`check_url`] sees `127.0.0.1`.
//!
//! The admin API asks the same questions when a webhook is registered
//! ([`vet`]), so a URL that can never be delivered is refused there (422)
//! rather than failing every delivery. That check does not replace the one at
//! delivery: DNS answers change, and the PHP application inserts webhooks with
//! SQL, past the API.
//!
//! For the guard to be complete the HTTP client must also be built without a
//! proxy (`no_proxy()`, a proxy resolves names itself) and without following
//! redirects (`redirect::Policy::none()`, a redirect target would bypass
//! [`check_url`]).

use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use crate::config::DeliveryConfig;

/// Hint appended to every refusal so the operator knows the way out.
const ALLOW_HINT: &str = "set [delivery] allow_private_targets = true to allow";

/// What the guard lets through: the `[delivery]` settings it obeys.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TargetPolicy {
    /// `[delivery] allow_private_targets`: skip the address check.
    pub allow_private: bool,
    /// `[delivery] https_only`: refuse `http://` URLs.
    pub https_only: bool,
}

impl TargetPolicy {
    pub fn of(config: &DeliveryConfig) -> TargetPolicy {
        TargetPolicy { allow_private: config.allow_private_targets, https_only: config.https_only }
    }
}

/// Why a webhook target is refused or unreachable.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    /// The URL scheme is neither `http` nor `https`.
    #[error("unsupported URL scheme {0:?}: webhook URLs must start with http:// or https://")]
    UnsupportedScheme(String),
    /// An `http://` URL while `[delivery] https_only` is set.
    #[error("refusing http://{host}: [delivery] https_only = true allows only https:// URLs; give the webhook an https:// URL, or set https_only = false to allow plain http")]
    HttpsOnly {
        /// Host as written in the URL.
        host: String,
    },
    /// The URL has no host part.
    #[error("webhook URL has no host: use an absolute URL such as https://example.com/webhook")]
    NoHost,
    /// The host is, or resolves only to, an address webhooks may not reach.
    #[error("{}", forbidden_message(host, *addr))]
    Forbidden {
        /// Host as written in the URL (normalised: `127.1` reads `127.0.0.1`).
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
    /// DNS resolution did not answer in time (registration only: a delivery
    /// is bounded by `[delivery] connect_timeout` as a whole).
    #[error("could not resolve {host} within {}; check the hostname in the webhook URL and this machine's DNS configuration", humantime::format_duration(*after))]
    ResolveTimeout {
        /// Host that did not resolve in time.
        host: String,
        /// How long the lookup was given.
        after: Duration,
    },
    /// DNS resolution succeeded but returned no addresses.
    #[error("{host} resolved to no addresses: check its DNS records")]
    NoAddresses {
        /// Host that resolved to nothing.
        host: String,
    },
}

/// The refusal's text: the host, the address when the host is a name, which
/// range the address is in, and the way out.
fn forbidden_message(host: &str, addr: IpAddr) -> String {
    let why = classify(addr).map_or_else(|| "an address webhooks may not reach".to_string(), |w| w.to_string());
    let literal = host.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>().is_ok();
    if literal {
        format!("refusing to deliver to {host}: {addr} is {why}; if this target is intended, {ALLOW_HINT}")
    } else {
        format!("refusing to deliver to {host}: it resolves to {addr}, {why}; if this target is intended, {ALLOW_HINT}")
    }
}

/// Why an address is forbidden: the range it is in, or, for an IPv6 address
/// that carries an IPv4 one, which form and that IPv4 address's range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Forbidden {
    /// In one of the forbidden ranges (the text names it, e.g.
    /// "a loopback address (127.0.0.0/8)").
    Range(&'static str),
    /// An IPv6 form (IPv4-mapped, NAT64, 6to4, ...) of a forbidden IPv4 address.
    Embedded {
        form: &'static str,
        v4: Ipv4Addr,
        range: &'static str,
    },
}

impl fmt::Display for Forbidden {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Forbidden::Range(range) => f.write_str(range),
            Forbidden::Embedded { form, v4, range } => write!(f, "{form} of {v4}, {range}"),
        }
    }
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
    classify(ip).is_some()
}

/// Why `ip` is forbidden ([`is_forbidden`]), or `None` when it is not.
pub fn classify(ip: IpAddr) -> Option<Forbidden> {
    match ip {
        IpAddr::V4(v4) => v4_range(v4).map(Forbidden::Range),
        IpAddr::V6(v6) => v6_forbidden(v6),
    }
}

/// Forbidden IPv4 networks as (network, prefix length, what it is).
const V4_FORBIDDEN: &[(u32, u32, &str)] = &[
    (0x0000_0000, 8, "an unspecified or \"this network\" address (0.0.0.0/8)"),
    (0x0A00_0000, 8, "a private address (10.0.0.0/8)"),
    (0x6440_0000, 10, "a carrier-grade NAT address (100.64.0.0/10)"),
    (0x7F00_0000, 8, "a loopback address (127.0.0.0/8)"),
    (0xA9FE_0000, 16, "a link-local address (169.254.0.0/16, where clouds serve instance metadata)"),
    (0xAC10_0000, 12, "a private address (172.16.0.0/12)"),
    (0xC000_0000, 24, "an IETF protocol assignment address (192.0.0.0/24)"),
    (0xC000_0200, 24, "a documentation address (192.0.2.0/24)"),
    (0xC058_6300, 24, "a 6to4 relay anycast address (192.88.99.0/24, deprecated)"),
    (0xC0A8_0000, 16, "a private address (192.168.0.0/16)"),
    (0xC612_0000, 15, "a benchmarking address (198.18.0.0/15)"),
    (0xC633_6400, 24, "a documentation address (198.51.100.0/24)"),
    (0xCB00_7100, 24, "a documentation address (203.0.113.0/24)"),
    (0xE000_0000, 4, "a multicast address (224.0.0.0/4)"),
    (0xF000_0000, 4, "a reserved or broadcast address (240.0.0.0/4)"),
];

/// Forbidden IPv6 networks (embedded-IPv4 ranges are handled separately).
const V6_FORBIDDEN: &[(u128, u32, &str)] = &[
    (0, 128, "the unspecified address (::)"),
    (1, 128, "the loopback address (::1)"),
    (0x0064_ff9b_0001_0000_0000_0000_0000_0000, 48, "a local-use NAT64 address (64:ff9b:1::/48)"),
    (0x0100_0000_0000_0000_0000_0000_0000_0000, 64, "a discard-only address (100::/64)"),
    (0x2001_0002_0000_0000_0000_0000_0000_0000, 48, "a benchmarking address (2001:2::/48)"),
    (0x2001_0db8_0000_0000_0000_0000_0000_0000, 32, "a documentation address (2001:db8::/32)"),
    (0x3fff_0000_0000_0000_0000_0000_0000_0000, 20, "a documentation address (3fff::/20)"),
    // Includes AWS's IPv6 instance metadata address fd00:ec2::254.
    (0xfc00_0000_0000_0000_0000_0000_0000_0000, 7, "a unique-local address (fc00::/7)"),
    (0xfe80_0000_0000_0000_0000_0000_0000_0000, 10, "a link-local address (fe80::/10)"),
    (0xfec0_0000_0000_0000_0000_0000_0000_0000, 10, "a site-local address (fec0::/10, deprecated)"),
    (0xff00_0000_0000_0000_0000_0000_0000_0000, 8, "a multicast address (ff00::/8)"),
];

/// IPv6 /96 prefixes whose low 32 bits are an IPv4 address.
const V6_EMBEDDING_LOW: &[(u128, &str)] = &[
    (0x0000_0000_0000_0000_0000_ffff_0000_0000, "an IPv4-mapped form"),
    (0, "an IPv4-compatible form"),
    (0x0000_0000_0000_0000_ffff_0000_0000_0000, "an IPv4-translated form"),
    (0x0064_ff9b_0000_0000_0000_0000_0000_0000, "a NAT64 form"),
];

fn v4_range(ip: Ipv4Addr) -> Option<&'static str> {
    let a = u32::from(ip);
    V4_FORBIDDEN
        .iter()
        .find(|&&(net, len, _)| {
            let mask = u32::MAX.checked_shl(32 - len).unwrap_or(0);
            a & mask == net & mask
        })
        .map(|&(_, _, what)| what)
}

fn v6_in(a: u128, net: u128, len: u32) -> bool {
    let mask = u128::MAX.checked_shl(128 - len).unwrap_or(0);
    a & mask == net & mask
}

fn v6_forbidden(ip: Ipv6Addr) -> Option<Forbidden> {
    let a = u128::from(ip);
    if let Some(&(_, _, what)) = V6_FORBIDDEN.iter().find(|&&(net, len, _)| v6_in(a, net, len)) {
        return Some(Forbidden::Range(what));
    }
    let embedded = |form: &'static str, v4: Ipv4Addr| v4_range(v4).map(|range| Forbidden::Embedded { form, v4, range });
    // Low 32 bits as IPv4: IPv4-mapped ::ffff:0:0/96, IPv4-compatible ::/96,
    // IPv4-translated ::ffff:0:0:0/96 and NAT64 64:ff9b::/96.
    if let Some(&(_, form)) = V6_EMBEDDING_LOW.iter().find(|&&(net, _)| v6_in(a, net, 96)) {
        return embedded(form, Ipv4Addr::from((a & 0xffff_ffff) as u32));
    }
    // 6to4 2002:V4ADDR::/48.
    if v6_in(a, 0x2002_0000_0000_0000_0000_0000_0000_0000, 16) {
        return embedded("a 6to4 form", Ipv4Addr::from(((a >> 80) & 0xffff_ffff) as u32));
    }
    // Teredo 2001:0:SERVER:FLAGS:PORT:CLIENT, client address bit-inverted.
    if v6_in(a, 0x2001_0000_0000_0000_0000_0000_0000_0000, 32) {
        return embedded("a Teredo form", Ipv4Addr::from(!((a & 0xffff_ffff) as u32)));
    }
    None
}

/// Checks scheme (http/https only, https only under `https_only`) and, for
/// an IP-literal host, the address (unless `allow_private`). Hostnames are
/// checked by the resolver below.
pub fn check_url(url: &url::Url, policy: TargetPolicy) -> Result<(), TargetError> {
    match url.scheme() {
        "https" => {}
        "http" if policy.https_only => {
            return Err(TargetError::HttpsOnly { host: url.host_str().unwrap_or_default().to_owned() })
        }
        "http" => {}
        other => return Err(TargetError::UnsupportedScheme(other.to_owned())),
    }
    let addr = match url.host() {
        None => return Err(TargetError::NoHost),
        Some(url::Host::Domain("")) => return Err(TargetError::NoHost),
        Some(url::Host::Domain(_)) => return Ok(()),
        Some(url::Host::Ipv4(v4)) => IpAddr::V4(v4),
        Some(url::Host::Ipv6(v6)) => IpAddr::V6(v6),
    };
    if !policy.allow_private && is_forbidden(addr) {
        let host = url.host_str().unwrap_or_default().to_owned();
        return Err(TargetError::Forbidden { host, addr });
    }
    Ok(())
}

/// Resolves `host` and, unless `allow_private`, keeps only permitted
/// addresses ([`keep_permitted`]). Ports in the result are 0 (reqwest fills
/// in the URL's port).
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
    keep_permitted(host, all, allow_private)
}

/// The addresses `host` resolved to that a webhook may reach: all of them
/// with `allow_private`, else the public ones.
///
/// Fails with [`TargetError::Forbidden`] (naming the first address) when
/// every address is forbidden and [`TargetError::NoAddresses`] when there
/// are none at all.
pub fn keep_permitted(host: &str, all: Vec<SocketAddr>, allow_private: bool) -> Result<Vec<SocketAddr>, TargetError> {
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

/// What checking a URL at registration found, when it is not refused.
#[derive(Debug)]
pub enum Vetted {
    /// Deliverable as far as can be told now: a permitted address, or a name
    /// that resolves to at least one.
    Permitted,
    /// The name did not resolve (failed, no addresses, or not in time). The
    /// API accepts such a URL with a warning: the receiver's DNS may not
    /// exist yet, a resolver may be down for a moment, and a name that does
    /// not resolve reaches nothing. Every delivery resolves it again and
    /// refuses a forbidden address then.
    Unresolved(TargetError),
}

/// The registration-time check of a webhook URL: [`check_url`], then, for a
/// hostname, a lookup of at most `timeout` through [`resolve_guarded`] (the
/// same code deliveries resolve with). Refuses what a delivery would refuse
/// whatever DNS says next ([`TargetError::UnsupportedScheme`],
/// [`TargetError::HttpsOnly`], [`TargetError::NoHost`]) and a host that is,
/// or resolves only to, a forbidden address.
pub async fn vet(url: &url::Url, policy: TargetPolicy, timeout: Duration) -> Result<Vetted, TargetError> {
    check_url(url, policy)?;
    let Some(url::Host::Domain(host)) = url.host() else {
        return Ok(Vetted::Permitted);
    };
    match tokio::time::timeout(timeout, resolve_guarded(host, policy.allow_private)).await {
        Ok(Ok(_)) => Ok(Vetted::Permitted),
        Ok(Err(e @ TargetError::Forbidden { .. })) => Err(e),
        Ok(Err(e)) => Ok(Vetted::Unresolved(e)),
        Err(_) => Ok(Vetted::Unresolved(TargetError::ResolveTimeout { host: host.to_owned(), after: timeout })),
    }
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

    const GUARDED: TargetPolicy = TargetPolicy { allow_private: false, https_only: false };
    const OPEN: TargetPolicy = TargetPolicy { allow_private: true, https_only: false };

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
        assert!(check_url(&url("https://example.com/hook"), GUARDED).is_ok());
        assert!(check_url(&url("http://example.com:8080/hook"), GUARDED).is_ok());
        // Hostnames are left to the resolver, even "localhost".
        assert!(check_url(&url("http://localhost/hook"), GUARDED).is_ok());
        assert!(check_url(&url("https://8.8.8.8/hook"), GUARDED).is_ok());
        assert!(check_url(&url("https://[2606:4700::1111]/hook"), GUARDED).is_ok());

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
            match check_url(&url(u), GUARDED) {
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
            assert!(check_url(&url(u), OPEN).is_ok(), "{u} with allow_private");
        }

        let err = check_url(&url("http://10.0.0.5/"), GUARDED).expect_err("forbidden");
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
                    check_url(&url(u), OPEN),
                    Err(TargetError::UnsupportedScheme(_))
                ),
                "{u}"
            );
        }
        assert!(
            matches!(check_url(&url("unix:/run/x.sock"), OPEN), Err(TargetError::UnsupportedScheme(s)) if s == "unix")
        );
    }

    /// The numeric and bracketed forms of issue 17: the URL parser turns each
    /// into the address it means, and that address is refused, by name.
    #[test]
    fn the_tricks_are_refused_with_the_address_and_its_range() {
        let cases = [
            ("http://127.1/", "127.0.0.1", "a loopback address (127.0.0.0/8)"),
            ("http://2130706433/", "127.0.0.1", "a loopback address (127.0.0.0/8)"),
            ("http://0x7f000001/", "127.0.0.1", "a loopback address (127.0.0.0/8)"),
            ("http://0177.0.0.1/", "127.0.0.1", "a loopback address (127.0.0.0/8)"),
            ("http://0.0.0.0/", "0.0.0.0", "an unspecified or \"this network\" address (0.0.0.0/8)"),
            ("http://[::]/", "::", "the unspecified address (::)"),
            ("http://[::1]/", "::1", "the loopback address (::1)"),
            ("http://[::ffff:127.0.0.1]/", "::ffff:127.0.0.1", "an IPv4-mapped form of 127.0.0.1, a loopback address (127.0.0.0/8)"),
            (
                "http://[::ffff:169.254.169.254]/",
                "::ffff:169.254.169.254",
                "an IPv4-mapped form of 169.254.169.254, a link-local address (169.254.0.0/16, where clouds serve instance metadata)",
            ),
        ];
        for (u, addr, why) in cases {
            let err = check_url(&url(u), GUARDED).expect_err(u);
            match &err {
                TargetError::Forbidden { addr: got, .. } => assert_eq!(*got, ip(addr), "{u}"),
                other => panic!("{u}: expected Forbidden, got {other:?}"),
            }
            let text = err.to_string();
            assert!(text.contains(&format!("{addr} is {why};")), "{u}: {text}");
            assert!(text.ends_with("set [delivery] allow_private_targets = true to allow"), "{u}: {text}");
            assert_eq!(classify(ip(addr)).map(|w| w.to_string()).as_deref(), Some(why), "{u}");
        }
    }

    #[test]
    fn a_refused_name_says_what_it_resolved_to() {
        let err = TargetError::Forbidden { host: "hooks.example.com".into(), addr: ip("10.0.0.5") };
        assert_eq!(
            err.to_string(),
            "refusing to deliver to hooks.example.com: it resolves to 10.0.0.5, a private address (10.0.0.0/8); \
             if this target is intended, set [delivery] allow_private_targets = true to allow"
        );
        assert_eq!(
            classify(ip("2002:c0a8:101::")),
            Some(Forbidden::Embedded { form: "a 6to4 form", v4: "192.168.1.1".parse().unwrap(), range: "a private address (192.168.0.0/16)" })
        );
        assert_eq!(classify(ip("fd00:ec2::254")), Some(Forbidden::Range("a unique-local address (fc00::/7)")));
        assert_eq!(classify(ip("8.8.8.8")), None);
        assert_eq!(classify(ip("::ffff:8.8.8.8")), None);
    }

    #[test]
    fn https_only_refuses_plain_http_and_still_checks_addresses() {
        let https_only = TargetPolicy { allow_private: false, https_only: true };
        let err = check_url(&url("http://example.com:8080/hook"), https_only).expect_err("http refused");
        assert!(matches!(&err, TargetError::HttpsOnly { host } if host == "example.com"), "{err:?}");
        let text = err.to_string();
        assert!(text.contains("https_only = true") && text.contains("https://"), "{text}");
        assert!(check_url(&url("https://example.com/hook"), https_only).is_ok());
        assert!(matches!(check_url(&url("https://10.0.0.5/"), https_only), Err(TargetError::Forbidden { .. })));
        let open_https_only = TargetPolicy { allow_private: true, https_only: true };
        assert!(matches!(check_url(&url("http://127.0.0.1/"), open_https_only), Err(TargetError::HttpsOnly { .. })));
        assert!(check_url(&url("https://127.0.0.1/"), open_https_only).is_ok());
    }

    #[test]
    fn resolved_addresses_keep_only_the_public_ones() {
        let sa = |s: &str| SocketAddr::new(ip(s), 0);
        let mixed = vec![sa("10.0.0.5"), sa("93.184.215.14"), sa("::1"), sa("2606:4700::1111")];
        assert_eq!(keep_permitted("h", mixed.clone(), false).unwrap(), vec![sa("93.184.215.14"), sa("2606:4700::1111")]);
        assert_eq!(keep_permitted("h", mixed, true).unwrap().len(), 4);
        let err = keep_permitted("h", vec![sa("fd00::5"), sa("10.0.0.5")], false).expect_err("all private");
        assert!(matches!(err, TargetError::Forbidden { ref host, addr } if host == "h" && addr == ip("fd00::5")), "{err:?}");
        assert!(matches!(keep_permitted("h", Vec::new(), true), Err(TargetError::NoAddresses { .. })));
    }

    #[tokio::test]
    async fn registration_refuses_what_a_delivery_would_and_accepts_an_unresolved_name() {
        for u in ["http://127.1:8080/", "http://[::ffff:169.254.169.254]/", "http://localhost/hook"] {
            assert!(matches!(vet(&url(u), GUARDED, Duration::from_secs(5)).await, Err(TargetError::Forbidden { .. })), "{u}");
            assert!(matches!(vet(&url(u), OPEN, Duration::from_secs(5)).await, Ok(Vetted::Permitted)), "{u}");
        }
        let https_only = TargetPolicy { allow_private: true, https_only: true };
        assert!(matches!(vet(&url("http://localhost/"), https_only, Duration::from_secs(5)).await, Err(TargetError::HttpsOnly { .. })));
        assert!(matches!(vet(&url("https://8.8.8.8/"), GUARDED, Duration::ZERO).await, Ok(Vetted::Permitted)), "a literal needs no lookup");
        // A name that does not resolve (RFC 6761: .invalid never does), or not
        // in time: accepted, with the reason (which of the two depends on how
        // fast this machine's resolver says no).
        match vet(&url("https://hooks.rowhook.invalid/"), GUARDED, Duration::from_millis(1)).await {
            Ok(Vetted::Unresolved(e @ (TargetError::Resolve { .. } | TargetError::ResolveTimeout { .. }))) => {
                assert!(e.to_string().starts_with("could not resolve hooks.rowhook.invalid"), "{e}")
            }
            other => panic!("expected Unresolved, got {other:?}"),
        }
        let e = TargetError::ResolveTimeout { host: "h.example".into(), after: Duration::from_secs(5) };
        assert_eq!(
            e.to_string(),
            "could not resolve h.example within 5s; check the hostname in the webhook URL and this machine's DNS configuration"
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
