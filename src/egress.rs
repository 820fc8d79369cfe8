//! Where layerpipe may connect: the rule that keeps it from being an open proxy.
//!
//! Registries listed in the config are trusted and reached wherever they are. For every
//! other registry (and its token realm and redirect targets) layerpipe only connects to
//! public addresses. The check happens in the connector, on the very addresses it is
//! about to connect to, so a DNS answer that changes between a check and the connect
//! cannot slip a private address through.

use std::error::Error as StdError;
use std::fmt;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::task::{Context, Poll};

use http::Uri;
use hyper_util::client::legacy::connect::dns::Name;
use tower_service::Service;

use crate::error::BoxError;

/// True for addresses on the public internet; false for loopback, private, shared,
/// link-local, unique-local, multicast, documentation and reserved ranges, and for IPv6
/// forms that embed such an IPv4 address.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(a == 0                                  // "this network", 0.0.0.0
        || a == 10                            // private
        || a == 127                           // loopback
        || (a == 100 && (64..128).contains(&b)) // shared address space (CGNAT)
        || (a == 169 && b == 254)             // link-local
        || (a == 172 && (16..32).contains(&b)) // private
        || (a == 192 && b == 0 && c == 0)     // IETF protocol assignments
        || (a == 192 && b == 0 && c == 2)     // documentation
        || (a == 192 && b == 168)             // private
        || (a == 198 && (18..20).contains(&b)) // benchmarking
        || (a == 198 && b == 51 && c == 100)  // documentation
        || (a == 203 && b == 0 && c == 113)   // documentation
        || a >= 224) // multicast, reserved, broadcast
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let s = ip.segments();
    let o = ip.octets();
    let last_32 = Ipv4Addr::new(o[12], o[13], o[14], o[15]);
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_public_v4(v4);
    }
    // IPv4-translated (::ffff:0:0/96, SIIT) and the well-known NAT64 prefix
    // (64:ff9b::/96) reach the IPv4 address in their last 32 bits.
    if s[0..6] == [0, 0, 0, 0, 0xffff, 0] || (s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0; 4]) {
        return is_public_v4(last_32);
    }
    if s[0] == 0x64 && s[1] == 0xff9b && s[2] == 1 {
        return is_public_local_use_nat64(o);
    }
    if s[0] == 0x2002 {
        return is_public_v4(Ipv4Addr::new((s[1] >> 8) as u8, s[1] as u8, (s[2] >> 8) as u8, s[2] as u8));
    }
    !(s[0..6] == [0; 6]                       // ::, ::1 and IPv4-compatible ::/96
        || (s[0] & 0xfe00) == 0xfc00          // unique-local fc00::/7
        || (s[0] & 0xffc0) == 0xfe80          // link-local fe80::/10
        || (s[0] & 0xffc0) == 0xfec0          // site-local fec0::/10 (deprecated)
        || (s[0] & 0xff00) == 0xff00          // multicast
        || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
        || (s[0] == 0x2001 && s[1] == 0)      // Teredo, which tunnels to anywhere
        || (s[0] == 0x0100 && s[1..4] == [0; 3])) // discard-only 100::/64
}

/// The local-use NAT64 prefix 64:ff9b:1::/48 (RFC 8215): the operator picks a sub-prefix
/// of length /48, /56, /64 or /96, which puts the IPv4 address at a different place
/// (RFC 6052, section 2.2), and nothing in the address says which. So every reading whose
/// suffix is zero, as RFC 6052 requires, must be public; the /96 reading always counts.
/// This errs towards refusing: with a /48, /56 or /64 sub-prefix the /96 reading is
/// 0.0.0.0, so only /96 sub-prefixes (the usual layout, as with 64:ff9b::/96) reach
/// public addresses.
fn is_public_local_use_nat64(o: [u8; 16]) -> bool {
    // Bits 64–71 are zero in every RFC 6052 format: anything else is no translation.
    if o[8] != 0 {
        return false;
    }
    let readings: [(Ipv4Addr, &[u8]); 4] = [
        (Ipv4Addr::new(o[6], o[7], o[9], o[10]), &o[11..]),   // /48
        (Ipv4Addr::new(o[7], o[9], o[10], o[11]), &o[12..]),  // /56
        (Ipv4Addr::new(o[9], o[10], o[11], o[12]), &o[13..]), // /64
        (Ipv4Addr::new(o[12], o[13], o[14], o[15]), &[]),     // /96
    ];
    readings.iter().filter(|(_, suffix)| suffix.iter().all(|&b| b == 0)).all(|(v4, _)| is_public_v4(*v4))
}

/// Refusal to connect to a non-public address on behalf of an unlisted registry.
#[derive(Debug)]
pub struct Refused {
    /// The host that was asked for.
    pub host: String,
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} is not a public address", self.host)
    }
}

impl StdError for Refused {}

/// Finds a [`Refused`] anywhere in an error's source chain (the HTTP client wraps it).
pub fn find_refused<'a>(mut e: &'a (dyn StdError + 'static)) -> Option<&'a Refused> {
    loop {
        if let Some(refused) = e.downcast_ref::<Refused>() {
            return Some(refused);
        }
        e = e.source()?;
    }
}

/// A DNS resolver that fails unless every address a name resolves to is public.
///
/// Failing on any private answer (rather than dropping it) keeps the rule simple: a name
/// that points into a private network at all is not a registry layerpipe reaches.
#[derive(Clone, Debug, Default)]
pub struct PublicResolver;

impl Service<Name> for PublicResolver {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: Name) -> Self::Future {
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if addrs.is_empty() || !addrs.iter().all(|a| is_public(a.ip())) {
                return Err(Box::new(Refused { host }) as BoxError);
            }
            Ok(addrs.into_iter())
        })
    }
}

/// A connector that refuses URLs whose host is a non-public IP literal, then hands the
/// rest to `C` (whose resolver checks names).
#[derive(Clone, Debug)]
pub struct PublicOnly<C>(pub C);

impl<C> Service<Uri> for PublicOnly<C>
where
    C: Service<Uri>,
    C::Error: Into<BoxError>,
    C::Future: Send + 'static,
{
    type Response = C::Response;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<C::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.0.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let host = uri.host().unwrap_or("").trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = host.parse::<IpAddr>() {
            if !is_public(ip) {
                let refused = Refused { host: host.to_owned() };
                return Box::pin(async move { Err(Box::new(refused) as BoxError) });
            }
        }
        let connecting = self.0.call(uri);
        Box::pin(async move { connecting.await.map_err(Into::into) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_addresses_are_not_public() {
        for ip in [
            "0.0.0.0",
            "127.0.0.1",
            "127.8.9.10",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.37",
            "169.254.169.254",
            "100.64.0.1",
            "224.0.0.1",
            "255.255.255.255",
            "192.0.2.1",
            "::",
            "::1",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::127.0.0.1",
            "64:ff9b::a00:1",
            "::ffff:0:127.0.0.1",
            "::ffff:0:10.0.0.1",
            "::ffff:0:169.254.169.254",
            "64:ff9b:1::a00:1",
            "64:ff9b:1::7f00:1",
            "64:ff9b:1:ffff:ff:ffff:c0a8:101",
            // 10.0.0.1 behind a /48 and a /64 local-use sub-prefix.
            "64:ff9b:1:a00:0:100::",
            "64:ff9b:1:0:a:0:100:0",
            // Bits 64–71 set: not a translated address at all.
            "64:ff9b:1:0:100::808:808",
            "2002:c0a8:0101::1",
            "2001:db8::1",
        ] {
            assert!(!is_public(ip.parse().unwrap()), "{ip} counted as public");
        }
    }

    #[test]
    fn public_addresses_are_public() {
        for ip in [
            "1.1.1.1",
            "8.8.8.8",
            "172.32.0.1",
            "100.128.0.1",
            "2606:4700::1111",
            "::ffff:1.1.1.1",
            "64:ff9b::101:101",
            "::ffff:0:8.8.8.8",
            "64:ff9b:1::808:808",
            "64:ff9b:1:ab:cd:ef:808:808",
        ] {
            assert!(is_public(ip.parse().unwrap()), "{ip} counted as private");
        }
    }

    #[tokio::test]
    async fn resolver_refuses_names_of_loopback() {
        let e = PublicResolver.call("localhost".parse::<Name>().unwrap()).await.unwrap_err();
        assert!(find_refused(e.as_ref()).is_some(), "{e}");
    }
}
