//! Endpoints' signing secrets at rest. The worker must read a secret back to sign, so it
//! cannot be hashed like an API key; it is sealed (AES-256-GCM, a random nonce each time)
//! under a key derived from `webhooks.encryption_key`, which never enters the database.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rand::RngCore;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use sha2::{Digest, Sha256};

/// What a sealed value starts with, so that another scheme can follow one day.
const VERSION: &str = "v1:";
/// Binds a sealed value to its use: a value sealed for something else does not open here.
const CONTEXT: &[u8] = b"dermabook webhook signing secret";

#[derive(Debug, thiserror::Error)]
#[error(
    "the signing secret cannot be opened: webhooks.encryption_key is not the one it was sealed with"
)]
pub struct Unreadable;

pub struct Sealer(LessSafeKey);

impl Sealer {
    /// The sealer for a configured key, or `None` when none is configured.
    pub fn new(encryption_key: &str) -> Option<Sealer> {
        if encryption_key.is_empty() {
            return None;
        }
        let key = Sha256::digest(encryption_key.as_bytes());
        let key = UnboundKey::new(&AES_256_GCM, &key).expect("a SHA-256 digest is 32 bytes");
        Some(Sealer(LessSafeKey::new(key)))
    }

    pub fn seal(&self, secret: &str) -> String {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rng().fill_bytes(&mut nonce);
        let mut sealed = secret.as_bytes().to_vec();
        self.0
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(CONTEXT),
                &mut sealed,
            )
            .expect("a secret is far below AES-GCM's length limit");
        let mut stored = nonce.to_vec();
        stored.extend_from_slice(&sealed);
        format!("{VERSION}{}", STANDARD.encode(stored))
    }

    pub fn open(&self, stored: &str) -> Result<String, Unreadable> {
        let bytes = stored
            .strip_prefix(VERSION)
            .and_then(|b| STANDARD.decode(b).ok())
            .filter(|b| b.len() > NONCE_LEN)
            .ok_or(Unreadable)?;
        let (nonce, sealed) = bytes.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| Unreadable)?;
        let mut sealed = sealed.to_vec();
        let opened = self
            .0
            .open_in_place(nonce, Aad::from(CONTEXT), &mut sealed)
            .map_err(|_| Unreadable)?;
        String::from_utf8(opened.to_vec()).map_err(|_| Unreadable)
    }
}

/// A new signing secret in the Standard Webhooks form: `whsec_` and 32 random bytes in
/// base64.
pub fn new_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("whsec_{}", STANDARD.encode(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_secret_opens_only_under_its_key_and_unaltered() {
        let sealer = Sealer::new("the clinic's encryption key, 32 characters+").unwrap();
        let secret = new_secret();
        let sealed = sealer.seal(&secret);
        assert!(!sealed.contains(&secret[6..]));
        assert_ne!(sealed, sealer.seal(&secret), "a fresh nonce each time");
        assert_eq!(sealer.open(&sealed).unwrap(), secret);

        let other = Sealer::new("another key of thirty-two characters or more").unwrap();
        assert!(other.open(&sealed).is_err());
        let mut altered = sealed.clone().into_bytes();
        let last = altered.len() - 3;
        altered[last] = if altered[last] == b'A' { b'B' } else { b'A' };
        assert!(sealer.open(&String::from_utf8(altered).unwrap()).is_err());
        assert!(sealer.open("v1:").is_err() && sealer.open("plain").is_err());
        assert!(Sealer::new("").is_none());
    }

    #[test]
    fn a_new_secret_is_what_the_reference_library_accepts() {
        let secret = new_secret();
        assert!(secret.starts_with("whsec_"));
        assert_eq!(STANDARD.decode(&secret[6..]).unwrap().len(), 32);
        assert!(standardwebhooks::Webhook::new(&secret).is_ok());
    }
}
