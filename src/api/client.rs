//! Who the client is, for rate limits and logs: the peer's address, or, when the peer is
//! a configured trusted proxy, the address that proxy says it saw. `X-Forwarded-For` from
//! anyone else is ignored, or any client could pick its own address.

use std::net::IpAddr;
use std::sync::Arc;

use actix_governor::governor::NotUntil;
use actix_governor::governor::clock::{Clock, DefaultClock, QuantaInstant};
use actix_governor::{KeyExtractor, SimpleKeyExtractionError};
use actix_web::dev::ServiceRequest;
use actix_web::http::header::{self, ContentType};
use actix_web::{HttpRequest, HttpResponse, HttpResponseBuilder};

use super::problem::PROBLEM_JSON;

/// The client's address under the server's trusted proxies; the key of every per-address
/// limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientAddress {
    trusted_proxies: Arc<Vec<IpAddr>>,
}

impl ClientAddress {
    pub fn new(trusted_proxies: Vec<IpAddr>) -> ClientAddress {
        ClientAddress {
            trusted_proxies: Arc::new(trusted_proxies.iter().map(IpAddr::to_canonical).collect()),
        }
    }

    /// The client as every per-address limit counts it: its IPv4 address, or its IPv6
    /// /64 (one subscriber's network, all of which a single host may use).
    pub fn of(&self, req: &HttpRequest) -> Option<IpAddr> {
        self.ip_of(req).map(network)
    }
}

impl ClientAddress {
    /// The client's own address (an IPv6 one whole, not its /64), for a party that
    /// judges the client itself, such as a challenge verifier.
    pub fn ip_of(&self, req: &HttpRequest) -> Option<IpAddr> {
        let forwarded = req
            .headers()
            .get_all("x-forwarded-for")
            .filter_map(|v| v.to_str().ok())
            .collect::<Vec<_>>()
            .join(",");
        client_ip(
            req.peer_addr().map(|a| a.ip()),
            &forwarded,
            &self.trusted_proxies,
        )
    }

    /// Whether the client reached us over https: directly, or through a trusted proxy
    /// that says so in `X-Forwarded-Proto` (from anyone else the header is ignored).
    pub fn came_over_https(&self, req: &HttpRequest) -> bool {
        if req.uri().scheme_str() == Some("https") {
            return true;
        }
        let from_proxy = req
            .peer_addr()
            .is_some_and(|peer| self.trusted_proxies.contains(&peer.ip().to_canonical()));
        from_proxy
            && req
                .headers()
                .get("x-forwarded-proto")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.split(',').next_back())
                .is_some_and(|v| v.trim().eq_ignore_ascii_case("https"))
    }
}

/// An IPv6 address's /64; an IPv4 address as it is.
pub fn network(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => {
            let prefix = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(prefix.into())
        }
    }
}

/// The client behind `peer`: the peer itself unless it is a trusted proxy; then the last
/// address in `forwarded` (`X-Forwarded-For`, the proxies' list, nearest last) that is
/// not itself a trusted proxy. An unreadable entry stops the walk at the proxy: what a
/// proxy appended can be trusted, what came before it cannot.
/// Addresses are compared in canonical form: an IPv4 peer seen on an IPv6 socket
/// (`::ffff:10.0.0.1`) is the proxy `10.0.0.1`.
pub fn client_ip(peer: Option<IpAddr>, forwarded: &str, trusted: &[IpAddr]) -> Option<IpAddr> {
    let peer = peer?.to_canonical();
    if !trusted.contains(&peer) {
        return Some(peer);
    }
    let mut client = peer;
    for entry in forwarded
        .rsplit(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
    {
        match entry.parse::<IpAddr>().map(|ip| ip.to_canonical()) {
            Ok(ip) => {
                client = ip;
                if !trusted.contains(&ip) {
                    break;
                }
            }
            Err(_) => break,
        }
    }
    Some(client)
}

impl KeyExtractor for ClientAddress {
    type Key = IpAddr;
    type KeyExtractionError = SimpleKeyExtractionError<&'static str>;

    fn extract(&self, req: &ServiceRequest) -> Result<IpAddr, Self::KeyExtractionError> {
        self.of(req.request())
            .ok_or_else(|| SimpleKeyExtractionError::new("the client's address is unknown"))
    }

    fn exceed_rate_limit_response(
        &self,
        negative: &NotUntil<QuantaInstant>,
        mut response: HttpResponseBuilder,
    ) -> HttpResponse {
        let wait = negative
            .wait_time_from(DefaultClock::default().now())
            .as_secs()
            .max(1);
        response
            .insert_header((header::RETRY_AFTER, wait.to_string()))
            .content_type(ContentType(PROBLEM_JSON.parse().expect("a media type")))
            .body(too_many_requests(wait))
    }
}

/// A 429 problem document asking to wait `wait_seconds`.
pub fn too_many_requests(wait_seconds: u64) -> String {
    serde_json::json!({
        "type": "/problems/too-many-requests",
        "title": "Too Many Requests",
        "status": 429,
        "detail": format!(
            "too many requests from this address; try again in {wait_seconds} seconds"
        ),
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn forwarded_for_is_believed_only_from_a_trusted_proxy() {
        let proxy = [ip("10.0.0.1")];
        // Anyone else's header is ignored.
        assert_eq!(
            client_ip(Some(ip("203.0.113.9")), "1.2.3.4", &proxy),
            Some(ip("203.0.113.9"))
        );
        // The proxy's word is taken: the last address it appended.
        assert_eq!(
            client_ip(Some(ip("10.0.0.1")), "1.2.3.4, 198.51.100.7", &proxy),
            Some(ip("198.51.100.7"))
        );
        // Proxies in a chain are walked past; garbage before them is not believed.
        let chain = [ip("10.0.0.1"), ip("10.0.0.2")];
        assert_eq!(
            client_ip(Some(ip("10.0.0.1")), "198.51.100.7, 10.0.0.2", &chain),
            Some(ip("198.51.100.7"))
        );
        assert_eq!(
            client_ip(Some(ip("10.0.0.1")), "evil, 10.0.0.2", &chain),
            Some(ip("10.0.0.2"))
        );
        assert_eq!(
            client_ip(Some(ip("10.0.0.1")), "", &proxy),
            Some(ip("10.0.0.1"))
        );
        // An IPv4 proxy seen on an IPv6 socket is still the proxy.
        assert_eq!(
            client_ip(Some(ip("::ffff:10.0.0.1")), "198.51.100.7", &proxy),
            Some(ip("198.51.100.7"))
        );
    }

    #[test]
    fn an_ipv6_client_is_counted_by_its_network() {
        assert_eq!(
            network(ip("2001:db8:1:2:aaaa:bbbb:cccc:dddd")),
            ip("2001:db8:1:2::")
        );
        assert_eq!(
            network(ip("2001:db8:1:2::1")),
            network(ip("2001:db8:1:2:ffff::9"))
        );
        assert_ne!(
            network(ip("2001:db8:1:2::1")),
            network(ip("2001:db8:1:3::1"))
        );
        assert_eq!(network(ip("192.0.2.7")), ip("192.0.2.7"));
    }
}
