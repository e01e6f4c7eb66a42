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
}
