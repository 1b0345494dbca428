//! Who is asking: web passwords (argon2id), session cookies and CSRF tokens.
//!
//! A session cookie holds 32 random bytes; the database keeps only their SHA-256, so a copy
//! of the database opens no session. Cookies are `HttpOnly` and `SameSite=Lax` (a form
//! posted from another site carries none), `Secure` when `[web] secure_cookies`.
//!
//! **CSRF.** Every form carries `csrf = HMAC(key, "csrf", seed)`, where the seed is the
//! session token, or before login a random `quorum_form` cookie. Another site can make a
//! browser post a form but can read neither cookie, so it cannot produce the token; checking
//! needs no server state.

use argon2::{
    Argon2, PasswordHash, PasswordHasher, PasswordVerifier,
    password_hash::{SaltString, rand_core::OsRng},
};
use axum::http::{HeaderMap, header};
use base64::Engine;
use quorum_domain::Keys;
use rand::RngCore;
use sha2::{Digest, Sha256};

pub const SESSION_COOKIE: &str = "quorum_session";
pub const FORM_COOKIE: &str = "quorum_form";

/// Web passwords shorter than this are refused.
pub const MIN_PASSWORD_LEN: usize = 10;

/// An argon2id hash in PHC string form (salt and parameters included).
pub fn hash_password(password: &str) -> String {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default().hash_password(password.as_bytes(), &salt).expect("argon2 with default parameters").to_string()
}

/// Whether `password` matches a stored hash; a malformed hash matches nothing.
pub fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|h| Argon2::default().verify_password(password.as_bytes(), &h).is_ok())
}

/// Checking a password against this costs the same as against a real one: an unknown
/// address takes as long to refuse as a wrong password (no account enumeration by timing).
pub fn dummy_hash() -> &'static str {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| hash_password("not a password anyone has"))
}

/// A fresh random token for a cookie.
pub fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// What the database stores for a session token.
pub fn token_hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// A cookie's value from the request.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
        .filter(|v| !v.is_empty())
}

/// A `Set-Cookie` value; `max_age` 0 deletes the cookie.
pub fn set_cookie(name: &str, value: &str, max_age_secs: i64, secure: bool) -> String {
    format!(
        "{name}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age_secs}{}",
        if secure { "; Secure" } else { "" }
    )
}

/// The CSRF token for forms shown to the holder of `seed`.
pub fn csrf_token(keys: &Keys, seed: &str) -> String {
    keys.token("csrf", seed)
}

/// Whether a posted CSRF token belongs to one of the request's cookies.
pub fn csrf_ok(keys: &Keys, headers: &HeaderMap, posted: &str) -> bool {
    [SESSION_COOKIE, FORM_COOKIE]
        .iter()
        .filter_map(|name| cookie(headers, name))
        .any(|seed| keys.verify_token("csrf", seed, posted))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn passwords_hash_with_salt_and_verify() {
        let a = hash_password("correct horse battery");
        let b = hash_password("correct horse battery");
        assert!(a.starts_with("$argon2id$") && a != b, "salted: {a} {b}");
        assert!(verify_password("correct horse battery", &a));
        assert!(!verify_password("correct horse batterY", &a));
        assert!(!verify_password("anything", "not a hash"));
        assert!(!verify_password("", dummy_hash()));
    }

    #[test]
    fn cookies_and_csrf() {
        let keys = Keys::from_master_text(&Keys::generate_master()).unwrap();
        let mut headers = HeaderMap::new();
        headers.insert(header::COOKIE, HeaderValue::from_static("a=1; quorum_form=seed-1; b="));
        assert_eq!(cookie(&headers, FORM_COOKIE), Some("seed-1"));
        assert_eq!(cookie(&headers, "b"), None);
        assert_eq!(cookie(&headers, SESSION_COOKIE), None);
        assert!(csrf_ok(&keys, &headers, &csrf_token(&keys, "seed-1")));
        assert!(!csrf_ok(&keys, &headers, &csrf_token(&keys, "seed-2")));
        assert!(!csrf_ok(&keys, &headers, ""));
        assert!(!csrf_ok(&keys, &HeaderMap::new(), &csrf_token(&keys, "seed-1")));
        assert_ne!(new_token(), new_token());
        assert_eq!(token_hash("x").len(), 32);
        assert!(set_cookie("s", "v", 60, true).ends_with("; Secure"));
    }
}
