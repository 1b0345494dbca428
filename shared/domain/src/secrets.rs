//! Keys, encryption of stored POP3 passwords, and HMAC tokens.
//!
//! One 32-byte master key (from the configuration or a key file) is the only secret the
//! operator keeps. Independent sub-keys are derived from it as `HMAC-SHA256(master, label)`:
//! HMAC is a PRF, so outputs for distinct labels are independent keys, and a leak of a
//! token never helps against the password cipher.

use std::fmt;

use aes_gcm::{
    Aes256Gcm, Nonce,
    aead::{Aead, KeyInit, Payload},
};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::Timestamp;

type HmacSha256 = Hmac<Sha256>;

/// Bytes of a token's MAC: 128 bits is far beyond what an online guesser can try.
const TOKEN_MAC_LEN: usize = 16;
/// Bytes of a [`Keys::timed_token`]'s MAC: 96 bits, still far beyond online guessing (and
/// the token expires), short enough for an address's local part.
const TIMED_MAC_LEN: usize = 12;
const DAY: i64 = 86_400;
const NONCE_LEN: usize = 12;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SecretError {
    #[error("the master key must be at least 32 bytes (base64 or hex), got {0}")]
    KeyTooShort(usize),
    #[error("the master key is neither base64 nor hex")]
    KeyEncoding,
    #[error("stored password cannot be decrypted: wrong master key or damaged data")]
    Decrypt,
}

/// Why a [`Keys::timed_token`] is refused.
#[derive(Debug, Clone, Copy, thiserror::Error, PartialEq, Eq)]
pub enum TokenError {
    #[error("the token was not issued by Quorum")]
    Forged,
    #[error("the token expired (issued at {})", .0.0)]
    Expired(Timestamp),
}

/// A secret string (a POP3 password). Its `Debug` and `Display` never show it, and its
/// memory is wiped when it is dropped.
#[derive(Clone, Zeroize, ZeroizeOnDrop, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl<'de> serde::Deserialize<'de> for Password {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Password)
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(***)")
    }
}

/// Keys derived from the master key.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct Keys {
    password_key: [u8; 32],
    token_key: [u8; 32],
}

impl fmt::Debug for Keys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Keys(***)")
    }
}

impl Keys {
    /// A fresh random master key, base64 encoded, for a new key file.
    pub fn generate_master() -> String {
        let mut key = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut key);
        let encoded = URL_SAFE_NO_PAD.encode(key);
        key.zeroize();
        encoded
    }

    /// Parses a master key written as base64 (standard or URL alphabet) or hex.
    pub fn from_master_text(text: &str) -> Result<Self, SecretError> {
        let t = text.trim();
        let mut bytes = if t.len() >= 64 && t.bytes().all(|b| b.is_ascii_hexdigit()) {
            hex::decode(t).map_err(|_| SecretError::KeyEncoding)?
        } else {
            let cleaned: String = t
                .chars()
                .map(|c| match c {
                    '+' => '-',
                    '/' => '_',
                    c => c,
                })
                .filter(|c| *c != '=')
                .collect();
            URL_SAFE_NO_PAD.decode(cleaned).map_err(|_| SecretError::KeyEncoding)?
        };
        let keys = Self::from_master(&bytes);
        bytes.zeroize();
        keys
    }

    pub fn from_master(master: &[u8]) -> Result<Self, SecretError> {
        if master.len() < 32 {
            return Err(SecretError::KeyTooShort(master.len()));
        }
        Ok(Self {
            password_key: derive(master, b"quorum/pop3-password/v1"),
            token_key: derive(master, b"quorum/token/v1"),
        })
    }

    /// Encrypts a POP3 password with AES-256-GCM. `context` (for example the mailbox's
    /// address) is authenticated but not stored: a ciphertext copied onto another mailbox's
    /// row no longer decrypts. Output: 12-byte random nonce followed by ciphertext and tag.
    pub fn encrypt_password(&self, password: &Password, context: &str) -> Vec<u8> {
        let cipher = Aes256Gcm::new_from_slice(&self.password_key).expect("32-byte key");
        let mut nonce = [0u8; NONCE_LEN];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let ct = cipher
            .encrypt(Nonce::from_slice(&nonce), Payload { msg: password.expose().as_bytes(), aad: context.as_bytes() })
            .expect("AES-GCM encryption of a short password cannot fail");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&ct);
        out
    }

    pub fn decrypt_password(&self, blob: &[u8], context: &str) -> Result<Password, SecretError> {
        if blob.len() < NONCE_LEN + 16 {
            return Err(SecretError::Decrypt);
        }
        let (nonce, ct) = blob.split_at(NONCE_LEN);
        let cipher = Aes256Gcm::new_from_slice(&self.password_key).expect("32-byte key");
        let mut plain = cipher
            .decrypt(Nonce::from_slice(nonce), Payload { msg: ct, aad: context.as_bytes() })
            .map_err(|_| SecretError::Decrypt)?;
        let text = String::from_utf8(plain.clone()).map_err(|_| SecretError::Decrypt);
        plain.zeroize();
        text.map(Password)
    }

    /// A URL- and header-safe token that proves Quorum issued `data` for `purpose`.
    pub fn token(&self, purpose: &str, data: &str) -> String {
        self.tag(purpose, data, TOKEN_MAC_LEN)
    }

    /// Checks a token from [`Keys::token`] in constant time.
    pub fn verify_token(&self, purpose: &str, data: &str, token: &str) -> bool {
        self.genuine(purpose, data, token.trim(), TOKEN_MAC_LEN)
    }

    /// A token that also proves when it was issued: `<issue day>.<MAC>`, the day since the
    /// Unix epoch (UTC) and a [`TIMED_MAC_LEN`]-byte MAC over `data` and the day, so it
    /// cannot be made younger. For addresses that act (a summary's reply address, a
    /// confirmation's VERP address): an old one found in an archive or a forwarded mail
    /// stops working when what it acts on is gone. Days and the shorter MAC keep such an
    /// address's local part within RFC 5321's 64 characters.
    pub fn timed_token(&self, purpose: &str, data: &str, issued: Timestamp) -> String {
        let day = issued.0.div_euclid(DAY);
        format!("{day}.{}", self.tag(purpose, &format!("{data}@{day}"), TIMED_MAC_LEN))
    }

    /// Checks a token from [`Keys::timed_token`]: genuine, not issued on a day after
    /// `now`'s, and at most `max_age_secs` old at `now`, counted from the start of its day.
    pub fn verify_timed_token(
        &self,
        purpose: &str,
        data: &str,
        token: &str,
        now: Timestamp,
        max_age_secs: i64,
    ) -> Result<Timestamp, TokenError> {
        let (day, mac) = token.trim().split_once('.').ok_or(TokenError::Forged)?;
        let day: i64 = day.parse().map_err(|_| TokenError::Forged)?;
        if !self.genuine(purpose, &format!("{data}@{day}"), mac, TIMED_MAC_LEN) || day > now.0.div_euclid(DAY) {
            return Err(TokenError::Forged);
        }
        let issued = Timestamp(day.saturating_mul(DAY));
        match now.0.saturating_sub(issued.0) > max_age_secs {
            true => Err(TokenError::Expired(issued)),
            false => Ok(issued),
        }
    }

    /// The first `len` bytes of the MAC, URL-safe base64.
    fn tag(&self, purpose: &str, data: &str, len: usize) -> String {
        URL_SAFE_NO_PAD.encode(&self.mac(purpose, data).finalize().into_bytes()[..len])
    }

    /// Whether `token` is [`Keys::tag`]'s, compared in constant time.
    fn genuine(&self, purpose: &str, data: &str, token: &str, len: usize) -> bool {
        let Ok(tag) = URL_SAFE_NO_PAD.decode(token) else { return false };
        tag.len() == len && self.mac(purpose, data).verify_truncated_left(&tag).is_ok()
    }

    fn mac(&self, purpose: &str, data: &str) -> HmacSha256 {
        let mut mac = <HmacSha256 as Mac>::new_from_slice(&self.token_key).expect("HMAC takes any key length");
        // Length-prefix the purpose so ("ab", "c") and ("a", "bc") never collide.
        mac.update(&(purpose.len() as u64).to_be_bytes());
        mac.update(purpose.as_bytes());
        mac.update(data.as_bytes());
        mac
    }
}

fn derive(master: &[u8], label: &[u8]) -> [u8; 32] {
    let mut mac = <HmacSha256 as Mac>::new_from_slice(master).expect("HMAC takes any key length");
    mac.update(label);
    mac.finalize().into_bytes().into()
}

/// The `X-Quorum-Release` header Quorum prepends to a message it delivers back into a
/// subscriber's mailbox, so the worker leaves that message alone when it sees it again.
///
/// Value: `<mailbox id>.<message id>.<issued at>.<mac>`. The MAC binds all three, so a
/// marker cannot be moved to another subscriber's mailbox or made younger. The MAC alone
/// does not stop a marker seen once from being copied onto new mail to the same mailbox;
/// the worker therefore also checks what the marker names: a release must carry the
/// released message's bytes, and a marker on Quorum's own notices (summaries, receipts,
/// message id [`ReleaseMarker::NOTICE`]) is honoured only while fresh.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReleaseMarker {
    pub mailbox_id: i64,
    pub message_id: i64,
    /// When Quorum issued it (Unix seconds).
    pub issued_at: i64,
}

impl ReleaseMarker {
    pub const HEADER: &'static str = "X-Quorum-Release";
    /// The message id of markers on Quorum's own notices (no quarantined message has id 0).
    pub const NOTICE: i64 = 0;
    /// How long a notice's marker keeps mail in the Inbox: long enough for any delivery
    /// delay, short enough that a copied marker soon stops working.
    pub const NOTICE_VALIDITY_SECS: i64 = 2 * 86_400;
    const PURPOSE: &'static str = "release";

    /// The marker for a released message, issued now.
    pub fn release(mailbox_id: i64, message_id: i64, at: crate::Timestamp) -> Self {
        Self { mailbox_id, message_id, issued_at: at.0 }
    }

    /// The marker for a notice (summary, receipt) sent to the subscriber of `mailbox_id`.
    pub fn notice(mailbox_id: i64, at: crate::Timestamp) -> Self {
        Self { mailbox_id, message_id: Self::NOTICE, issued_at: at.0 }
    }

    pub fn is_notice(&self) -> bool {
        self.message_id == Self::NOTICE
    }

    /// The header line, with its CRLF, to put on top of a message.
    pub fn header_line(&self, keys: &Keys) -> String {
        format!("{}: {}\r\n", Self::HEADER, self.header_value(keys))
    }

    pub fn header_value(&self, keys: &Keys) -> String {
        let data = self.data();
        format!("{data}.{}", keys.token(Self::PURPOSE, &data))
    }

    fn data(&self) -> String {
        format!("{}.{}.{}", self.mailbox_id, self.message_id, self.issued_at)
    }

    /// Parses and verifies a header value; `None` for anything forged or malformed.
    pub fn verify(value: &str, keys: &Keys) -> Option<Self> {
        let mut parts = value.trim().splitn(4, '.');
        let (mailbox, message, issued, mac) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        let marker = Self {
            mailbox_id: mailbox.parse().ok()?,
            message_id: message.parse().ok()?,
            issued_at: issued.parse().ok()?,
        };
        keys.verify_token(Self::PURPOSE, &marker.data(), mac).then_some(marker)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> Keys {
        Keys::from_master(&[7u8; 32]).unwrap()
    }

    #[test]
    fn password_round_trip_and_context_binding() {
        let k = keys();
        let blob = k.encrypt_password(&Password::new("hunter2"), "alice@example.org");
        assert!(!blob.windows(7).any(|w| w == b"hunter2"));
        assert_eq!(k.decrypt_password(&blob, "alice@example.org").unwrap().expose(), "hunter2");
        assert_eq!(k.decrypt_password(&blob, "mallory@example.org"), Err(SecretError::Decrypt));
        let other = Keys::from_master(&[8u8; 32]).unwrap();
        assert_eq!(other.decrypt_password(&blob, "alice@example.org"), Err(SecretError::Decrypt));
    }

    #[test]
    fn same_password_encrypts_differently() {
        let k = keys();
        let p = Password::new("same");
        assert_ne!(k.encrypt_password(&p, "c"), k.encrypt_password(&p, "c"));
    }

    #[test]
    fn timed_tokens_expire_and_cannot_be_made_younger() {
        let k = keys();
        let day = 86_400;
        let start = Timestamp(20_000 * day);
        let token = k.timed_token("summary", "42", Timestamp(start.0 + 3_600));
        assert!(token.starts_with("20000.") && token.len() == "20000.".len() + 16, "{token}");
        let check = |purpose: &str, data: &str, token: &str, now: i64| {
            k.verify_timed_token(purpose, data, token, Timestamp(now), 30 * day)
        };
        assert_eq!(check("summary", "42", &token, start.0 + day), Ok(start));
        assert_eq!(check("summary", "42", &token, start.0 + 30 * day), Ok(start));
        assert_eq!(check("summary", "42", &token, start.0 + 30 * day + 1), Err(TokenError::Expired(start)));
        let younger = token.replacen("20000.", "20010.", 1);
        assert_eq!(check("summary", "42", &younger, start.0 + 11 * day), Err(TokenError::Forged));
        assert_eq!(check("summary", "43", &token, start.0), Err(TokenError::Forged));
        assert_eq!(check("release", "42", &token, start.0), Err(TokenError::Forged));
        // Issued on a later day than now: not ours.
        assert_eq!(check("summary", "42", &token, start.0 - 1), Err(TokenError::Forged));
        assert_eq!(check("summary", "42", "garbage", start.0), Err(TokenError::Forged));
        assert_eq!(check("summary", "42", "20000.!!!", start.0), Err(TokenError::Forged));
    }

    #[test]
    fn debug_hides_secrets() {
        assert_eq!(format!("{:?}", Password::new("hunter2")), "Password(***)");
        let p: Password =
            serde::Deserialize::deserialize(serde::de::value::StrDeserializer::<serde::de::value::Error>::new("pw"))
                .unwrap();
        assert_eq!(p.expose(), "pw");
        assert_eq!(format!("{:?}", keys()), "Keys(***)");
    }

    #[test]
    fn master_key_formats() {
        let b64 = Keys::generate_master();
        assert!(Keys::from_master_text(&b64).is_ok());
        assert!(Keys::from_master_text(&"ab".repeat(32)).is_ok());
        assert_eq!(Keys::from_master_text("c2hvcnQ=").unwrap_err(), SecretError::KeyTooShort(5));
        assert_eq!(Keys::from_master_text("not base64 !!").unwrap_err(), SecretError::KeyEncoding);
    }

    #[test]
    fn tokens_verify_only_for_their_purpose_and_data() {
        let k = keys();
        let t = k.token("summary", "42");
        assert!(k.verify_token("summary", "42", &t));
        assert!(!k.verify_token("summary", "43", &t));
        assert!(!k.verify_token("summar", "y42", &t));
        assert!(!k.verify_token("summary", "42", "AAAAAAAAAAAAAAAAAAAAAA"));
        assert!(!k.verify_token("summary", "42", ""));
    }

    #[test]
    fn release_marker_round_trip_and_forgery() {
        let k = keys();
        let m = ReleaseMarker::release(3, 99, crate::Timestamp(1_000));
        let v = m.header_value(&k);
        assert_eq!(ReleaseMarker::verify(&v, &k), Some(m));
        assert_eq!(ReleaseMarker::verify(&v.replacen("3.", "4.", 1), &k), None);
        assert_eq!(ReleaseMarker::verify(&v.replacen(".1000.", ".2000.", 1), &k), None, "cannot be made younger");
        assert_eq!(ReleaseMarker::verify("3.99.1000.forged", &k), None);
        assert_eq!(ReleaseMarker::verify("garbage", &k), None);
        let other = Keys::from_master(&[9u8; 32]).unwrap();
        assert_eq!(ReleaseMarker::verify(&v, &other), None);
    }
}
