//! Where a delivery may go. Webhook URLs are typed by admins but fetched by the server, so
//! an endpoint must not reach inside the clinic's network (a database, a cloud metadata
//! service): its URL is `https` (or `http` where allowed), carries no credentials, and
//! every address its host resolves to is public. That is checked at registration and
//! again at each delivery, after the resolution the connection then uses, so a name that
//! later resolves elsewhere (DNS rebinding) is refused too.

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::Pin;

use crate::config::WebhookSettings;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TargetError {
    #[error("is not an absolute URL")]
    NotAUrl,
    #[error("must start with https://")]
    NotHttps,
    #[error("must start with https:// or http://")]
    NotHttp,
    #[error("must not carry a user name or password")]
    Credentials,
    #[error("names no host")]
    NoHost,
    #[error("must be at most 2000 characters")]
    TooLong,
    // Neither says which address a name has, or whether it has one: an endpoint's
    // errors must not map the clinic's internal names.
    #[error("{host} is not a public address")]
    NotPublic { host: String, address: IpAddr },
    #[error("{host} must resolve to public addresses only")]
    Unresolvable { host: String },
}

/// What the configuration allows.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    pub allow_http: bool,
    pub allow_private: bool,
}

impl Policy {
    pub fn from_settings(settings: &WebhookSettings) -> Policy {
        Policy {
            allow_http: settings.allow_http,
            allow_private: settings.allow_private_targets,
        }
    }

    fn check_address(&self, host: &str, address: IpAddr) -> Result<(), TargetError> {
        if self.allow_private || is_public(address) {
            return Ok(());
        }
        Err(TargetError::NotPublic {
            host: host.to_string(),
            address,
        })
    }
}

/// The URL's form: scheme, no credentials, a host; and, when the host is an address, a
/// public one. Names are resolved by [`resolve_checked`].
pub fn check_url(url: &str, policy: Policy) -> Result<url::Url, TargetError> {
    if url.len() > 2000 {
        return Err(TargetError::TooLong);
    }
    let parsed = url::Url::parse(url).map_err(|_| TargetError::NotAUrl)?;
    match parsed.scheme() {
        "https" => {}
        "http" if policy.allow_http => {}
        _ if policy.allow_http => return Err(TargetError::NotHttp),
        _ => return Err(TargetError::NotHttps),
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(TargetError::Credentials);
    }
    match parsed.host() {
        None => Err(TargetError::NoHost),
        Some(url::Host::Domain("")) => Err(TargetError::NoHost),
        Some(url::Host::Domain(_)) => Ok(()),
        Some(url::Host::Ipv4(ip)) => policy.check_address(&ip.to_string(), IpAddr::V4(ip)),
        Some(url::Host::Ipv6(ip)) => policy.check_address(&ip.to_string(), IpAddr::V6(ip)),
    }?;
    Ok(parsed)
}

/// How long a name may take to resolve: a registration waits for it.
const LOOKUP_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// The addresses `host` resolves to, if every one may be reached under `policy`.
pub async fn resolve_checked(
    host: &str,
    port: u16,
    policy: Policy,
) -> Result<Vec<SocketAddr>, TargetError> {
    let unresolvable = || TargetError::Unresolvable {
        host: host.to_string(),
    };
    let lookup = tokio::net::lookup_host((host, port));
    let addresses: Vec<SocketAddr> = tokio::time::timeout(LOOKUP_TIMEOUT, lookup)
        .await
        .map_err(|_| unresolvable())?
        .map_err(|_| unresolvable())?
        .collect();
    if addresses.is_empty() {
        return Err(unresolvable());
    }
    for address in &addresses {
        policy.check_address(host, address.ip())?;
    }
    Ok(addresses)
}

/// A registration's full check: the URL's form, then its host's addresses.
pub async fn check_target(url: &str, policy: Policy) -> Result<url::Url, TargetError> {
    let parsed = check_url(url, policy)?;
    if let Some(url::Host::Domain(host)) = parsed.host() {
        let port = parsed.port_or_known_default().unwrap_or(443);
        resolve_checked(host, port, policy).await?;
    }
    Ok(parsed)
}

/// The delivery client's resolver: the connection goes to the addresses checked here,
/// never to a second lookup's.
pub struct CheckedResolver(pub Policy);

type Lookup<'a> =
    Pin<Box<dyn Future<Output = Result<Vec<SocketAddr>, Box<dyn std::error::Error>>> + 'a>>;

impl actix_tls::connect::Resolve for CheckedResolver {
    fn lookup<'a>(&'a self, host: &'a str, port: u16) -> Lookup<'a> {
        Box::pin(async move {
            // An IPv6 literal arrives in its brackets, which no lookup resolves.
            let literal = host.strip_prefix('[').and_then(|h| h.strip_suffix(']'));
            if let Some(address) = literal.and_then(|h| h.parse::<IpAddr>().ok()) {
                self.0
                    .check_address(host, address)
                    .map_err(|e| Box::new(e) as Box<dyn std::error::Error>)?;
                return Ok(vec![SocketAddr::new(address, port)]);
            }
            resolve_checked(host, port, self.0)
                .await
                .map_err(|e| Box::new(e) as Box<dyn std::error::Error>)
        })
    }
}

/// Whether an address is on the public internet: not loopback, private, shared (CGNAT),
/// link-local, multicast, documentation, benchmarking or reserved, including IPv4
/// addresses written as IPv6.
pub fn is_public(address: IpAddr) -> bool {
    match address {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

/// Azure's WireServer: a public address that answers only from inside Azure, with the
/// host's secrets.
const AZURE_WIRESERVER: Ipv4Addr = Ipv4Addr::new(168, 63, 129, 16);

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_unspecified()
        || ip == AZURE_WIRESERVER
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_multicast()
        || ip.is_broadcast()
        || ip.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b)) // shared address space (CGNAT)
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 198 && (b == 18 || b == 19)) // benchmarking
        || a >= 240) // reserved
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_public_v4(v4);
    }
    let segments = ip.segments();
    let embedded = |hi: u16, lo: u16| Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
    // NAT64 (64:ff9b::/96) and IPv4-translated (::ffff:0:0/96) addresses reach the IPv4
    // address in their last 32 bits; 6to4 (2002::/16) the one in bits 16 to 48.
    if segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0] || segments[..6] == [0, 0, 0, 0, 0xffff, 0] {
        return is_public_v4(embedded(segments[6], segments[7]));
    }
    if segments[0] == 0x2002 {
        return is_public_v4(embedded(segments[1], segments[2]));
    }
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        || (segments[0] & 0xfe00) == 0xfc00 // unique local
        || (segments[0] & 0xffc0) == 0xfe80 // link-local
        || (segments[0] & 0xffc0) == 0xfec0 // site-local (deprecated)
        || (segments[0] == 0x2001 && segments[1] == 0x0db8) // documentation
        || (segments[0] == 0x2001 && segments[1] < 0x0200) // IETF protocol assignments, Teredo
        || (segments[0] == 0x64 && segments[1] == 0xff9b && segments[2] == 1) // local NAT64
        || segments[..6] == [0, 0, 0, 0, 0, 0]) // IPv4-compatible, deprecated
}

#[cfg(test)]
mod tests {
    use super::*;

    const STRICT: Policy = Policy {
        allow_http: false,
        allow_private: false,
    };

    #[test]
    fn only_public_addresses_are_public() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "192.0.2.10",
            "198.18.0.1",
            "240.0.0.1",
            "::1",
            "::",
            "fd00::1",
            "fe80::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a9fe:a9fe",
            "2001:db8::1",
            "::127.0.0.1",
            "::ffff:0:7f00:1",
            "2002:c0a8:0101::1",
            "2001:0:4136:e378::1",
            "64:ff9b:1::a00:1",
            "168.63.129.16",
        ] {
            assert!(!is_public(private.parse().unwrap()), "{private}");
        }
        for public in [
            "8.8.8.8",
            "1.1.1.1",
            "172.32.0.1",
            "100.128.0.1",
            "2606:4700:4700::1111",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:0808:0808::1",
            "2a00:1450:4001::1",
        ] {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
    }

    #[test]
    fn a_url_needs_https_a_host_no_credentials_and_a_public_address() {
        assert!(check_url("https://hooks.example.com/dermabook", STRICT).is_ok());
        assert_eq!(
            check_url("http://hooks.example.com/", STRICT).unwrap_err(),
            TargetError::NotHttps
        );
        assert_eq!(
            check_url("ftp://hooks.example.com/", STRICT).unwrap_err(),
            TargetError::NotHttps
        );
        assert_eq!(
            check_url("https://user:pw@hooks.example.com/", STRICT).unwrap_err(),
            TargetError::Credentials
        );
        assert_eq!(
            check_url("hooks", STRICT).unwrap_err(),
            TargetError::NotAUrl
        );
        for inside in [
            "https://127.0.0.1/",
            "https://[::1]:8443/",
            "https://169.254.169.254/latest/meta-data",
            "https://[::ffff:10.0.0.1]/",
            "https://2130706433/",
            "https://0x7f.1/",
        ] {
            assert!(
                matches!(
                    check_url(inside, STRICT),
                    Err(TargetError::NotPublic { .. })
                ),
                "{inside}"
            );
        }
        let open = Policy {
            allow_http: true,
            allow_private: true,
        };
        assert!(check_url("http://127.0.0.1:9/", open).is_ok());
        assert_eq!(
            check_url("ftp://x.example/", open).unwrap_err(),
            TargetError::NotHttp
        );
    }

    #[tokio::test]
    async fn a_name_is_refused_when_it_resolves_inside() {
        let refused = check_target("https://localhost:8443/hook", STRICT).await;
        assert!(
            matches!(refused, Err(TargetError::NotPublic { .. })),
            "{refused:?}"
        );
        let unknown = check_target("https://no-such-host.invalid/", STRICT).await;
        assert!(matches!(unknown, Err(TargetError::Unresolvable { .. })));
    }
}
