//! Secret tokens, pure: staff session tokens (random, stored only as a hash) and the
//! patients' manage links (derived from a booking's reference under the server secret).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use sha2::{Digest, Sha256};

/// A fresh secret token: 256 random bits, base64url without padding.
pub fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// What is stored for a token: its SHA-256, hex. The token is random enough that no salt
/// or slow hash is needed, and a fast hash lets a lookup use the unique index.
pub fn token_hash(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A booking's random nonce (128 bits), part of its manage token.
pub fn new_nonce() -> String {
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A booking's manage token: HMAC-SHA256 of its reference and nonce under the server's
/// secret, 256 bits no one can guess without the secret. The database stores only the
/// token's SHA-256 (as for staff tokens), yet every email, including reminders written
/// long after the booking, can carry the patient's link. A new nonce revokes the old
/// link. Bookings made before nonces (an empty one) keep their first link.
pub fn manage_token(secret: &str, reference: &str, nonce: &str) -> String {
    use hmac::{KeyInit, Mac};
    let mut mac = hmac::Hmac::<Sha256>::new_from_slice(secret.as_bytes())
        .expect("HMAC takes a key of any length");
    if nonce.is_empty() {
        mac.update(b"dermabook manage link v1:");
        mac.update(reference.as_bytes());
    } else {
        mac.update(b"dermabook manage link v2:");
        mac.update(reference.as_bytes());
        mac.update(b":");
        mac.update(nonce.as_bytes());
    }
    URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_256_bits_and_distinct() {
        let a = new_token();
        assert_eq!(URL_SAFE_NO_PAD.decode(&a).unwrap().len(), 32);
        assert_ne!(a, new_token());
        assert_eq!(token_hash(&a).len(), 64);
        assert_eq!(token_hash(&a), token_hash(&a));
    }

    #[test]
    fn manage_tokens_depend_on_secret_reference_and_nonce() {
        let secret = "a secret of at least thirty-two characters";
        let token = manage_token(secret, "K7M2-QX9D", "n1");
        assert_eq!(URL_SAFE_NO_PAD.decode(&token).unwrap().len(), 32);
        assert_eq!(token, manage_token(secret, "K7M2-QX9D", "n1"));
        assert_ne!(token, manage_token(secret, "K7M2-QX9E", "n1"));
        assert_ne!(token, manage_token(secret, "K7M2-QX9D", "n2"));
        assert_ne!(token, manage_token(secret, "K7M2-QX9D", ""));
        assert_ne!(
            token,
            manage_token("another secret of thirty-two characters", "K7M2-QX9D", "n1")
        );
    }
}
