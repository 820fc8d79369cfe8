//! SHA-256 and hex, as test expectations are written. The `sha2` crate, not the `ring`
//! that layerpipe hashes with, so that a test never checks layerpipe's hashing against
//! itself.

use sha2::{Digest as _, Sha256};

/// `sha256` of `bytes` in lower-case hex, without the `sha256:` prefix.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 15)] as char);
    }
    out
}
