//! Database URLs: mysql_async's `mysql://` URL, plus the CA file TLS needs.
//!
//! mysql_async reads TLS settings from the URL (`require_ssl=true`,
//! `verify_ca`, `verify_identity`) and checks the server's certificate
//! against the public web roots, but has no URL parameter for a private CA,
//! which is what self-hosted servers and most managed ones (Amazon RDS, for
//! one) sign with. `ssl_ca=/path/to/ca.pem` adds it (and turns TLS on), so an
//! operator configures everything about a connection in its one URL, as
//! `--ssl-ca` does for the `mariadb` client. Every connection rowhook makes
//! (the binlog reader, the state database, the instance lock) goes through
//! [`opts`].
//!
//! When a connection fails, [`ConnectError`] says it once: which database
//! ([`Target`]: what it is for, host and port, the setting that names it),
//! the cause (the error's chain, each message once: [`cause_once`]), and what
//! to check for that cause. Never the URL itself, which may hold a password.

use std::path::PathBuf;

/// Why a database URL is refused.
#[derive(Debug, thiserror::Error)]
pub enum DbUrlError {
    #[error("not a URL: {0}")]
    NotAUrl(#[from] url::ParseError),
    #[error("{0}")]
    Mysql(#[from] mysql_async::UrlError),
    #[error("ssl_ca={path}: {error} (a PEM file of the CA that signed the server's certificate)")]
    CaFile { path: PathBuf, error: String },
}

/// The connection options of a `mysql://` URL (see the module docs for `ssl_ca`).
pub fn opts(url: &str) -> Result<mysql_async::Opts, DbUrlError> {
    let mut parsed = url::Url::parse(url)?;
    let mut ca_file = None;
    let rest: Vec<(String, String)> = parsed
        .query_pairs()
        .filter_map(|(key, value)| {
            if key == "ssl_ca" {
                ca_file = Some(PathBuf::from(value.into_owned()));
                None
            } else {
                Some((key.into_owned(), value.into_owned()))
            }
        })
        .collect();
    let Some(ca_file) = ca_file else {
        return Ok(mysql_async::Opts::from_url(url)?);
    };
    // TLS on, so that mysql_async applies `verify_ca` and `verify_identity` too.
    let mut rest: Vec<(String, String)> = rest.into_iter().filter(|(key, _)| key != "require_ssl").collect();
    rest.push(("require_ssl".into(), "true".into()));
    parsed.query_pairs_mut().clear().extend_pairs(&rest);
    let opts = mysql_async::Opts::from_url(parsed.as_str())?;
    let pem = std::fs::read_to_string(&ca_file).map_err(|e| DbUrlError::CaFile { path: ca_file.clone(), error: e.to_string() })?;
    if !pem.contains("-----BEGIN CERTIFICATE-----") {
        return Err(DbUrlError::CaFile { path: ca_file, error: "holds no PEM certificate".into() });
    }
    let tls = opts.ssl_opts().cloned().unwrap_or_default().with_root_certs(vec![ca_file.into()]);
    Ok(mysql_async::OptsBuilder::from_opts(opts).ssl_opts(tls).into())
}

/// A database rowhook connects to, as messages name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// What it is for: `the source database`, `the state database`, ...
    pub role: String,
    pub host: String,
    pub port: u16,
    /// The setting its URL came from: `ROWHOOK__SOURCE__URL`, `[source] url in rowhook.toml, line 12`.
    pub setting: String,
    /// Whether the URL asks for TLS.
    pub tls: bool,
}

impl Target {
    /// The database of `opts`, for `role`, named by `setting`.
    pub fn new(role: impl Into<String>, opts: &mysql_async::Opts, setting: impl Into<String>) -> Target {
        Target {
            role: role.into(),
            host: opts.ip_or_hostname().to_string(),
            port: opts.tcp_port(),
            setting: setting.into(),
            tls: opts.ssl_opts().is_some(),
        }
    }

    /// `host:port` (`[::1]:3306` for an IPv6 address).
    pub fn address(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// Why a connection failed, by what the operator has to check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The server said the user or password is wrong (1045).
    AccessDenied,
    /// The user may not use the URL's database (1044).
    DatabaseDenied,
    /// The URL's database does not exist (1049).
    UnknownDatabase,
    /// Nothing listens on that port.
    Refused,
    /// The host name does not resolve.
    HostNotFound,
    /// No answer, or no route.
    Unreachable,
    /// TLS could not be set up (certificate, CA, name).
    Tls,
    /// Anything else.
    Other,
}

/// A failed connection, said once: the target, the cause, what to check.
#[derive(Debug, thiserror::Error)]
#[error("cannot connect to {}, {} (from {}): {cause}. {}", .target.address(), .target.role, .target.setting, advice(.failure, .target))]
pub struct ConnectError {
    pub target: Target,
    pub failure: Failure,
    /// The error's chain, each message once.
    pub cause: String,
}

impl ConnectError {
    pub fn new(target: &Target, error: &mysql_async::Error) -> ConnectError {
        ConnectError { target: target.clone(), failure: classify(error), cause: cause_once(error) }
    }
}

/// Connects to `target`, whose options are `opts`.
pub async fn connect(opts: &mysql_async::Opts, target: &Target) -> Result<mysql_async::Conn, ConnectError> {
    mysql_async::Conn::new(opts.clone()).await.map_err(|e| ConnectError::new(target, &e))
}

/// What the operator has to check for a failure.
fn advice(failure: &Failure, target: &Target) -> String {
    let (host, port) = (&target.host, target.port);
    match failure {
        Failure::AccessDenied if !target.tls => "Check the user name and password in that URL, and that this user may connect \
                                                 from this host (the host part of 'user'@'host'); a user that must use TLS \
                                                 (REQUIRE SSL) is refused the same way without it: add ssl_ca= to the URL"
            .to_string(),
        Failure::AccessDenied => "Check the user name and password in that URL, and that this user may connect from this host \
                                  (the host part of 'user'@'host')"
            .to_string(),
        Failure::DatabaseDenied => "Check the database name in that URL, and grant the user access to it (docs/source-database.md)".to_string(),
        Failure::UnknownDatabase => "Check the database name in that URL, or create the database".to_string(),
        Failure::Refused => format!("Check that the server is running on {host} and listens on port {port}"),
        Failure::HostNotFound => format!("Check the host name `{host}`: it does not resolve"),
        Failure::Unreachable => format!("Check the host and port, and that the network and firewalls let {host}:{port} through"),
        Failure::Tls => format!(
            "Check TLS in that URL: ssl_ca= must name the CA that signed the server's certificate, issued for `{host}` \
             (verify_identity=false accepts another name; docs/source-database.md#tls)"
        ),
        Failure::Other => format!("Check that {host}:{port} is a MySQL or MariaDB server and that URL is right"),
    }
}

/// The failure behind a connection error.
pub fn classify(error: &mysql_async::Error) -> Failure {
    use mysql_async::{Error, IoError};
    match error {
        Error::Server(e) => match e.code {
            1045 | 1698 => Failure::AccessDenied,
            1044 => Failure::DatabaseDenied,
            1049 => Failure::UnknownDatabase,
            _ => Failure::Other,
        },
        Error::Io(IoError::Tls(_)) => Failure::Tls,
        Error::Io(IoError::Io(e)) => {
            use std::io::ErrorKind;
            let text = e.to_string();
            match e.kind() {
                ErrorKind::ConnectionRefused => Failure::Refused,
                ErrorKind::TimedOut | ErrorKind::HostUnreachable | ErrorKind::NetworkUnreachable => Failure::Unreachable,
                _ if text.contains("lookup address") || text.contains("Name or service not known") || text.contains("name resolution") => {
                    Failure::HostNotFound
                }
                _ if text.contains("certificate") || text.contains("TLS") => Failure::Tls,
                _ => Failure::Other,
            }
        }
        Error::Driver(mysql_async::DriverError::NoClientSslFlagFromServer) => Failure::Tls,
        _ => Failure::Other,
    }
}

/// Labels that wrap another error and add nothing to it.
const WRAPPERS: [&str; 7] = ["Input/output error", "Server error", "TLS error", "Driver error", "Other error", "URL error", "Io error"];

/// An error and its sources as one line, each message once: a wrapper's
/// text that repeats its source's is cut down to what it adds (mysql_async's
/// `Input/output error: Input/output error: Connection refused (os error
/// 111)` is `Connection refused (os error 111)`).
pub fn cause_once(error: &(dyn std::error::Error + 'static)) -> String {
    let mut messages: Vec<String> = Vec::new();
    let mut next = Some(error);
    while let Some(e) = next {
        messages.push(e.to_string());
        next = e.source();
    }
    let mut parts: Vec<String> = Vec::new();
    for (i, message) in messages.iter().enumerate() {
        let punctuation = |c: char| c == ':' || c == '`' || c == '\'' || c.is_whitespace();
        let mut own = message.as_str();
        // A wrapper ending with its source's text (`Server error: `{source}'`): the source says it.
        if let Some(inner) = messages.get(i + 1).filter(|inner| !inner.is_empty()) {
            if let Some(at) = own.rfind(inner.as_str()) {
                if own[at + inner.len()..].trim_matches(punctuation).is_empty() {
                    own = &own[..at];
                }
            }
        }
        let own = own.trim_matches(punctuation);
        if own.is_empty() || WRAPPERS.contains(&own) || parts.iter().any(|p| p.contains(own)) {
            continue;
        }
        parts.push(own.to_string());
    }
    if parts.is_empty() {
        return messages.pop().unwrap_or_default();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ca_file() -> tempfile::NamedTempFile {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        std::io::Write::write_all(&mut file, b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n").unwrap();
        file
    }

    #[test]
    fn a_url_without_ssl_ca_is_mysql_async_s_own() {
        let o = opts("mysql://u:p@db:3307/app?require_ssl=true&verify_identity=false").unwrap();
        assert_eq!((o.ip_or_hostname(), o.tcp_port(), o.db_name()), ("db", 3307, Some("app")));
        assert!(o.ssl_opts().is_some_and(|t| t.skip_domain_validation()));
        assert!(opts("mysql://u@db/app").unwrap().ssl_opts().is_none(), "no TLS unless asked for");
    }

    #[test]
    fn ssl_ca_turns_tls_on_with_that_ca_and_keeps_the_other_parameters() {
        let ca = ca_file();
        let url = format!("mysql://u@db:3307/app?verify_identity=false&ssl_ca={}", ca.path().display());
        let o = opts(&url).unwrap();
        let tls = o.ssl_opts().expect("TLS on");
        assert_eq!(tls.root_certs().len(), 1);
        assert!(tls.skip_domain_validation(), "the other TLS parameters still apply");
        assert_eq!(o.db_name(), Some("app"));
        assert!(opts(&format!("mysql://u@db/app?ssl_ca={}", ca.path().display())).unwrap().ssl_opts().is_some());
    }

    #[test]
    fn a_missing_or_empty_ca_file_and_unknown_parameters_are_refused_by_name() {
        let err = opts("mysql://u@db/app?ssl_ca=/nonexistent/ca.pem").unwrap_err().to_string();
        assert!(err.contains("ssl_ca=/nonexistent/ca.pem") && err.contains("PEM"), "{err}");
        let empty = tempfile::NamedTempFile::new().unwrap();
        let err = opts(&format!("mysql://u@db/app?ssl_ca={}", empty.path().display())).unwrap_err().to_string();
        assert!(err.contains("no PEM certificate"), "{err}");
        let err = opts("mysql://u@db/app?sslmode=require").unwrap_err().to_string();
        assert!(err.contains("sslmode"), "{err}");
        assert!(opts("not a url").is_err());
    }

    fn target() -> Target {
        Target::new("the source database", &opts("mysql://u:s3cret@db.internal:3307/app").unwrap(), "ROWHOOK__SOURCE__URL")
    }

    fn io(error: std::io::Error) -> mysql_async::Error {
        mysql_async::Error::Io(mysql_async::IoError::Io(error))
    }

    #[test]
    fn a_refused_port_is_said_once_with_host_port_and_what_to_check() {
        let error = io(std::io::Error::from_raw_os_error(111));
        assert!(error.to_string().matches("Input/output error").count() == 2, "mysql_async wraps it twice: {error}");
        let message = ConnectError::new(&target(), &error).to_string();
        assert_eq!(
            message,
            "cannot connect to db.internal:3307, the source database (from ROWHOOK__SOURCE__URL): \
             Connection refused (os error 111). Check that the server is running on db.internal and listens on port 3307"
        );
        assert!(!message.contains("s3cret"));
    }

    #[test]
    fn a_wrong_password_is_said_once() {
        let error = mysql_async::Error::Server(mysql_async::ServerError {
            code: 1045,
            message: "Access denied for user 'u'@'10.0.0.5' (using password: YES)".into(),
            state: "28000".into(),
        });
        let e = ConnectError::new(&target(), &error);
        assert_eq!(e.failure, Failure::AccessDenied);
        assert_eq!(e.cause, "ERROR 1045 (28000): Access denied for user 'u'@'10.0.0.5' (using password: YES)");
        assert!(e.to_string().contains("(from ROWHOOK__SOURCE__URL): ERROR 1045 (28000): Access denied"), "{e}");
        assert!(e.to_string().contains("Check the user name and password in that URL"), "{e}");
    }

    #[test]
    fn failures_are_told_apart() {
        let dns = io(std::io::Error::other("failed to lookup address information: Name or service not known"));
        assert_eq!(classify(&dns), Failure::HostNotFound);
        assert_eq!(cause_once(&dns), "failed to lookup address information: Name or service not known");
        assert_eq!(classify(&io(std::io::Error::from(std::io::ErrorKind::TimedOut))), Failure::Unreachable);
        let server = |code| mysql_async::Error::Server(mysql_async::ServerError { code, message: "m".into(), state: "s".into() });
        assert_eq!(classify(&server(1049)), Failure::UnknownDatabase);
        assert_eq!(classify(&server(1044)), Failure::DatabaseDenied);
        assert_eq!(classify(&server(1064)), Failure::Other);
        let tls = mysql_async::Error::Driver(mysql_async::DriverError::NoClientSslFlagFromServer);
        assert_eq!(classify(&tls), Failure::Tls);
    }

    #[test]
    fn a_chain_keeps_what_each_level_adds() {
        #[derive(Debug)]
        struct Outer(std::io::Error);
        impl std::fmt::Display for Outer {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "reading the checkpoint")
            }
        }
        impl std::error::Error for Outer {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                Some(&self.0)
            }
        }
        let e = Outer(std::io::Error::from_raw_os_error(111));
        assert_eq!(cause_once(&e), "reading the checkpoint: Connection refused (os error 111)");
        // A source's text inside its wrapper, not at its end: the wrapper is kept whole, the source not repeated.
        let e = Outer(std::io::Error::other("reading"));
        assert_eq!(cause_once(&e), "reading the checkpoint");
        assert_eq!(Target { host: "::1".into(), ..target() }.address(), "[::1]:3307");
    }
}
