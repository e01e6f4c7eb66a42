//! Who is calling, and what they may do: bearer tokens with scopes, console
//! sessions and their CSRF tokens. Plain functions and two small stores; the
//! HTTP server's middleware ([`crate::admin::http`]) applies them.
//!
//! - **Tokens.** `[admin] tokens` names tokens, each `read` or `admin`, kept
//!   in the config as the SHA-256 of the token; the single `[admin] token`
//!   of the first versions is an admin token named `token`. A presented
//!   token is hashed and compared with every configured hash in constant
//!   time ([`Tokens::check`]), so neither the comparison nor which entry
//!   matched shows in the time taken. No token configured: the API and the
//!   console are open (and `daemon::run` listens on loopback addresses only).
//! - **Scopes.** `read` may use the safe methods (GET, HEAD); anything else
//!   needs `admin` ([`needs`]).
//! - **Sessions.** Signing in to the console trades a token for a random
//!   session id in an `HttpOnly`, `SameSite=Strict` cookie ([`Sessions`]),
//!   kept in memory only (a restart signs everyone out), expiring after
//!   `[admin] session_lifetime`. The store holds the SHA-256 of each id, not
//!   the id, and is bounded. Each session has a CSRF token that every
//!   changing request made with the cookie must send back in a header.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::config::{AdminConfig, TokenScope, SINGLE_TOKEN_NAME};

pub use crate::config::TokenScope as Scope;

/// The console's session cookie.
pub const SESSION_COOKIE: &str = "rowhook_session";
/// The header carrying the session's CSRF token on changing requests.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// Sessions kept at most; the oldest goes when a new one would exceed it.
pub const MAX_SESSIONS: usize = 1024;

/// Why the tokens of a config cannot be used (config validation catches
/// these first; this is the same check where the tokens are built).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("admin.tokens.{name}.hash: must be sha256: and 64 hex digits")]
    BadHash { name: String },
}

/// How a caller proved who it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// `Authorization: Bearer ...`.
    Bearer,
    /// The console's session cookie.
    Console,
    /// Nothing: no token is configured.
    Open,
}

impl Via {
    pub fn as_str(self) -> &'static str {
        match self {
            Via::Bearer => "bearer",
            Via::Console => "console",
            Via::Open => "open",
        }
    }
}

/// A caller: the name of its token (never the token), its scope, and how it came.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub name: Arc<str>,
    pub scope: Scope,
    pub via: Via,
}

impl Caller {
    /// The caller when no token is configured: everything is allowed.
    pub fn open() -> Caller {
        Caller { name: Arc::from("(no token configured)"), scope: Scope::Admin, via: Via::Open }
    }

    pub fn can_change(&self) -> bool {
        self.scope == Scope::Admin
    }
}

/// The scope a request method needs: `read` for GET and HEAD, else `admin`.
pub fn needs(method: &str) -> Scope {
    if is_safe(method) {
        Scope::Read
    } else {
        Scope::Admin
    }
}

/// GET and HEAD change nothing; every other method may.
pub fn is_safe(method: &str) -> bool {
    matches!(method, "GET" | "HEAD")
}

struct Entry {
    name: Arc<str>,
    scope: Scope,
    digest: [u8; 32],
}

/// The configured tokens.
pub struct Tokens {
    entries: Vec<Entry>,
}

impl Tokens {
    /// The tokens of `[admin]`: the single `token` (an admin token named
    /// `token`) and every named one.
    pub fn from_config(admin: &AdminConfig) -> Result<Tokens, TokenError> {
        let mut entries = Vec::new();
        if let Some(token) = admin.token.as_deref().filter(|t| !t.is_empty()) {
            entries.push(Entry { name: Arc::from(SINGLE_TOKEN_NAME), scope: TokenScope::Admin, digest: digest(token) });
        }
        for (name, token) in &admin.tokens {
            let digest = token.digest().ok_or_else(|| TokenError::BadHash { name: name.clone() })?;
            entries.push(Entry { name: Arc::from(name.as_str()), scope: token.scope, digest });
        }
        Ok(Tokens { entries })
    }

    /// No token configured: the API and the console are open.
    pub fn is_open(&self) -> bool {
        self.entries.is_empty()
    }

    /// The caller a presented token belongs to. Every configured hash is
    /// compared, each in constant time, whatever matched before.
    pub fn check(&self, presented: &str) -> Option<Caller> {
        let given = digest(presented);
        let mut found: Option<&Entry> = None;
        for entry in &self.entries {
            let equal: bool = entry.digest.ct_eq(&given).into();
            if equal && found.is_none() {
                found = Some(entry);
            }
        }
        found.map(|e| Caller { name: e.name.clone(), scope: e.scope, via: Via::Bearer })
    }
}

fn digest(text: &str) -> [u8; 32] {
    Sha256::digest(text.as_bytes()).into()
}

/// `sha256:<hex>` of a token, as `[admin.tokens.NAME] hash` wants it
/// (what `printf %s TOKEN | sha256sum` prints, with the prefix).
pub fn hash_token(token: &str) -> String {
    let hex: String = digest(token).iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

/// A new random token: `rht_` and 32 random bytes, base64url.
pub fn generate_token() -> String {
    format!("rht_{}", random_id())
}

/// 32 random bytes, base64url without padding.
fn random_id() -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>())
}

/// Whether two secrets are equal, in time that depends on neither.
pub fn same_secret(a: &str, b: &str) -> bool {
    digest(a).ct_eq(&digest(b)).into()
}

/// A signed-in console user.
#[derive(Debug, Clone)]
pub struct Session {
    pub caller: Caller,
    /// Sent back in [`CSRF_HEADER`] (or the form field `csrf`) by every changing request.
    pub csrf: String,
    pub expires_at: Instant,
}

/// The console's sessions, in memory.
pub struct Sessions {
    lifetime: Duration,
    /// By the SHA-256 of the session id.
    live: Mutex<HashMap<[u8; 32], Session>>,
}

impl Sessions {
    pub fn new(lifetime: Duration) -> Sessions {
        Sessions { lifetime, live: Mutex::new(HashMap::new()) }
    }

    pub fn lifetime(&self) -> Duration {
        self.lifetime
    }

    /// Starts a session for `caller`; returns its id (the cookie's value) and the session.
    pub fn start(&self, caller: &Caller) -> (String, Session) {
        let id = random_id();
        let now = Instant::now();
        let session = Session {
            caller: Caller { via: Via::Console, ..caller.clone() },
            csrf: random_id(),
            expires_at: now + self.lifetime,
        };
        let mut live = self.live.lock().unwrap_or_else(|e| e.into_inner());
        live.retain(|_, s| s.expires_at > now);
        if live.len() >= MAX_SESSIONS {
            if let Some(oldest) = live.iter().min_by_key(|(_, s)| s.expires_at).map(|(k, _)| *k) {
                live.remove(&oldest);
            }
        }
        live.insert(digest(&id), session.clone());
        (id, session)
    }

    /// The live session of this id; an expired one is forgotten.
    pub fn find(&self, id: &str) -> Option<Session> {
        let key = digest(id);
        let mut live = self.live.lock().unwrap_or_else(|e| e.into_inner());
        match live.get(&key) {
            Some(s) if s.expires_at > Instant::now() => Some(s.clone()),
            Some(_) => {
                live.remove(&key);
                None
            }
            None => None,
        }
    }

    /// Signs out.
    pub fn end(&self, id: &str) {
        self.live.lock().unwrap_or_else(|e| e.into_inner()).remove(&digest(id));
    }

    /// Sessions alive now.
    pub fn count(&self) -> usize {
        let now = Instant::now();
        self.live.lock().unwrap_or_else(|e| e.into_inner()).values().filter(|s| s.expires_at > now).count()
    }
}

/// Tokens and sessions: what the middleware needs to know who calls.
pub struct Auth {
    pub tokens: Tokens,
    pub sessions: Sessions,
}

impl Auth {
    pub fn from_config(admin: &AdminConfig) -> Result<Auth, TokenError> {
        Ok(Auth { tokens: Tokens::from_config(admin)?, sessions: Sessions::new(admin.session_lifetime) })
    }
}

/// The value of cookie `name` in a `Cookie` header.
pub fn cookie<'h>(header: &'h str, name: &str) -> Option<&'h str> {
    header.split(';').filter_map(|pair| pair.trim().split_once('=')).find(|(k, _)| *k == name).map(|(_, v)| v.trim())
}

/// The `Set-Cookie` value of a session: `HttpOnly`, `SameSite=Strict`, the
/// whole site (the console calls `/api`), `Secure` when served over TLS.
pub fn session_cookie(name: &str, value: &str, max_age: Duration, secure: bool) -> String {
    format!(
        "{name}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{}",
        max_age.as_secs(),
        if secure { "; Secure" } else { "" }
    )
}

/// The `Set-Cookie` value that removes cookie `name`.
pub fn cleared_cookie(name: &str, secure: bool) -> String {
    session_cookie(name, "", Duration::ZERO, secure)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::TokenConfig;

    fn admin(token: Option<&str>, named: &[(&str, Scope, &str)]) -> AdminConfig {
        let mut admin = AdminConfig { token: token.map(str::to_string), ..AdminConfig::default() };
        for (name, scope, secret) in named {
            admin.tokens.insert(name.to_string(), TokenConfig { scope: *scope, hash: hash_token(secret) });
        }
        admin
    }

    #[test]
    fn hash_is_what_sha256sum_prints_with_the_prefix() {
        // printf %s abc | sha256sum
        assert_eq!(hash_token("abc"), "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        assert_eq!(crate::config::token_digest(&hash_token("abc")), Some(digest("abc")));
        assert_eq!(crate::config::token_digest(&hash_token("abc").to_uppercase().replace("SHA256", "sha256")), Some(digest("abc")));
        assert_eq!(crate::config::token_digest("sha256:abc"), None);
        assert_eq!(crate::config::token_digest("md5:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"), None);
        assert_eq!(crate::config::token_digest(&format!("sha256:{}", "g".repeat(64))), None);
        assert_eq!(crate::config::token_digest(&format!("sha256:{}", "é".repeat(32))), None, "no panic on multibyte text");
    }

    #[test]
    fn each_token_is_its_caller_and_scope() {
        let tokens = Tokens::from_config(&admin(Some("old-single"), &[("dash", Scope::Read, "read-me"), ("ci", Scope::Admin, "ci-secret")])).unwrap();
        assert!(!tokens.is_open());
        let who = |t: &str| tokens.check(t).map(|c| (c.name.to_string(), c.scope, c.via));
        assert_eq!(who("old-single"), Some(("token".into(), Scope::Admin, Via::Bearer)), "the single token is an admin token");
        assert_eq!(who("read-me"), Some(("dash".into(), Scope::Read, Via::Bearer)));
        assert_eq!(who("ci-secret"), Some(("ci".into(), Scope::Admin, Via::Bearer)));
        for wrong in ["", "read-m", "read-me ", "READ-ME", &hash_token("read-me")] {
            assert_eq!(who(wrong), None, "{wrong:?}");
        }
        assert!(Tokens::from_config(&AdminConfig::default()).unwrap().is_open());
        assert!(Tokens::from_config(&admin(Some(""), &[])).unwrap().is_open(), "an empty token is no token");
        let mut bad = admin(None, &[]);
        bad.tokens.insert("x".into(), TokenConfig { scope: Scope::Read, hash: "sha256:00".into() });
        assert_eq!(Tokens::from_config(&bad).err(), Some(TokenError::BadHash { name: "x".into() }));
    }

    #[test]
    fn read_may_use_safe_methods_only() {
        assert_eq!(needs("GET"), Scope::Read);
        assert_eq!(needs("HEAD"), Scope::Read);
        for method in ["POST", "PUT", "DELETE", "PATCH", "OPTIONS", "BREW"] {
            assert_eq!(needs(method), Scope::Admin, "{method}");
        }
    }

    #[test]
    fn sessions_expire_end_and_stay_bounded() {
        let caller = Caller { name: Arc::from("dash"), scope: Scope::Read, via: Via::Bearer };
        let sessions = Sessions::new(Duration::from_millis(200));
        let (id, session) = sessions.start(&caller);
        assert_eq!(session.caller.via, Via::Console);
        assert_ne!(id, session.csrf);
        assert!(id.len() >= 43 && session.csrf.len() >= 43, "256 random bits each");
        let found = sessions.find(&id).expect("live");
        assert_eq!((found.caller.name.as_ref(), found.caller.scope, found.csrf.as_str()), ("dash", Scope::Read, session.csrf.as_str()));
        assert!(sessions.find("not-a-session").is_none());
        assert!(sessions.find("").is_none());
        let (other, _) = sessions.start(&caller);
        sessions.end(&other);
        assert!(sessions.find(&other).is_none(), "signed out");
        std::thread::sleep(Duration::from_millis(250));
        assert!(sessions.find(&id).is_none(), "expired");
        assert_eq!(sessions.count(), 0);

        let many = Sessions::new(Duration::from_secs(60));
        let first = many.start(&caller).0;
        for _ in 0..MAX_SESSIONS + 10 {
            many.start(&caller);
        }
        assert_eq!(many.count(), MAX_SESSIONS);
        assert!(many.find(&first).is_none(), "the oldest went first");
    }

    #[test]
    fn cookies_are_read_and_written() {
        assert_eq!(cookie("a=1; rowhook_session=xyz; b=2", SESSION_COOKIE), Some("xyz"));
        assert_eq!(cookie("rowhook_session_x=1", SESSION_COOKIE), None);
        assert_eq!(cookie("", SESSION_COOKIE), None);
        assert_eq!(cookie("garbage;;=;", SESSION_COOKIE), None);
        assert_eq!(
            session_cookie(SESSION_COOKIE, "v", Duration::from_secs(60), false),
            "rowhook_session=v; Path=/; HttpOnly; SameSite=Strict; Max-Age=60"
        );
        assert!(session_cookie(SESSION_COOKIE, "v", Duration::from_secs(60), true).ends_with("; Secure"));
        assert!(cleared_cookie(SESSION_COOKIE, false).starts_with("rowhook_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"));
        assert!(same_secret("abc", "abc") && !same_secret("abc", "abd") && !same_secret("abc", "abcd"));
        assert!(generate_token().starts_with("rht_") && generate_token() != generate_token());
    }
}
