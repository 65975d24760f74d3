//! sha256 helpers: lower-case hex digests of bytes, files and ordered lists of digests.

use sha2::{Digest, Sha256};

/// Lower-case hex sha256 of a byte slice.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Fingerprint of several digests: sha256 over "name:sha256\n" lines in the given order.
pub fn combine(parts: &[(String, String)]) -> String {
    let mut h = Sha256::new();
    for (name, digest) in parts {
        h.update(name.as_bytes());
        h.update(b":");
        h.update(digest.as_bytes());
        h.update(b"\n");
    }
    hex::encode(h.finalize())
}
