//! The `rowhook` command: `run`, `migrate`, `check-config`, `listen`,
//! `hash-token`, `rotate-secrets-key`, and `backfill` / `replay` against a running daemon's admin API.

use std::io::IsTerminal as _;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Parser, Subcommand, ValueEnum};
use rowhook::config::{Config, LogFormat};
use rowhook::daemon::{self, ResetPosition, RunError};
use rowhook::source::schema::{Problems, SchemaError};
use rowhook::state::store::StoreError;

#[derive(Parser)]
#[command(name = "rowhook", version, about = "Webhooks from a MySQL/MariaDB binlog, without changing the application")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Read the binlog and deliver webhooks until stopped (SIGTERM, Ctrl-C).
    Run {
        #[arg(long, default_value = "config/rowhook.toml")]
        config: PathBuf,
        /// Ignore the checkpoint and start here (after a purged binlog, for instance).
        #[arg(long, value_enum)]
        reset_position: Option<Reset>,
    },
    /// Create or update rowhook's tables in the state database (safe to repeat).
    Migrate {
        #[arg(long, default_value = "config/rowhook.toml")]
        config: PathBuf,
    },
    /// Check the config against the live schema and server settings.
    CheckConfig {
        #[arg(long, default_value = "config/rowhook.toml")]
        config: PathBuf,
    },
    /// Copy a table's current rows to a webhook (through the running daemon), with a progress bar.
    Backfill {
        #[command(flatten)]
        api: ApiArgs,
        /// The webhook's id.
        #[arg(long)]
        webhook: u64,
        /// The event type whose rule maps the rows (the webhook must subscribe to it).
        #[arg(long)]
        event_type: String,
        /// A JSON array of tests, e.g. '[{"column": "status", "equals": "open"}]' (docs/backfill.md).
        #[arg(long)]
        filter: Option<String>,
        /// At most this many rows.
        #[arg(long)]
        limit: Option<u64>,
        /// Queue it and return (no progress bar).
        #[arg(long)]
        no_wait: bool,
    },
    /// Send a webhook's stored deliveries of a time window again (through the running daemon).
    Replay {
        #[command(flatten)]
        api: ApiArgs,
        #[arg(long)]
        webhook: u64,
        /// RFC 3339, e.g. 2026-12-01T00:00:00Z.
        #[arg(long)]
        since: String,
        /// RFC 3339 (default: now).
        #[arg(long)]
        until: Option<String>,
        /// `failed` (the default) or `all` (delivered ones too).
        #[arg(long)]
        status: Option<String>,
        /// Only these event types (comma-separated).
        #[arg(long, value_delimiter = ',')]
        event_types: Vec<String>,
    },
    /// Receive webhooks, verify their signatures and print them.
    Listen {
        #[arg(long, env = "ROWHOOK_LISTEN_SECRET")]
        secret: String,
        #[arg(long, default_value = "127.0.0.1:9000")]
        listen: std::net::SocketAddr,
    },
    /// Seal every webhook secret with [admin] secrets_key: plaintext ones, and those sealed with
    /// secrets_key_previous (after a key rotation). Safe to repeat, and while rowhook runs.
    RotateSecretsKey {
        #[arg(long, default_value = "config/rowhook.toml")]
        config: PathBuf,
    },
    /// Print the `sha256:` hash of a token, for `hash` of an [admin.tokens.NAME]: the token is
    /// read from standard input (its line end is not part of it), so it stays out of the shell's
    /// history. With --new, make a random token and print it and its hash.
    HashToken {
        /// Make a new random token instead of reading one.
        #[arg(long)]
        new: bool,
    },
}

/// Where the daemon's admin API is: `--api` and `--token`, else the config's `[http] listen` and `[admin] token`.
#[derive(clap::Args)]
struct ApiArgs {
    #[arg(long, default_value = "config/rowhook.toml")]
    config: PathBuf,
    /// The admin API, e.g. http://127.0.0.1:8080 (default: the config's [http] listen, https:// with [http] tls_cert).
    #[arg(long)]
    api: Option<String>,
    /// The admin token (default: ROWHOOK__ADMIN__TOKEN, then the config's).
    #[arg(long, env = "ROWHOOK__ADMIN__TOKEN")]
    token: Option<String>,
}

impl ApiArgs {
    fn api(&self) -> anyhow::Result<rowhook::client::Api> {
        // https:// needs a crypto provider (reqwest is built without one).
        let _ = rustls::crypto::ring::default_provider().install_default();
        if let Some(base) = &self.api {
            return Ok(rowhook::client::Api::new(base, self.token.clone()));
        }
        let config = Config::load(&self.config).with_context(|| "reading the config for the admin API's address (or give --api URL)")?;
        let token = self.token.clone().or(config.admin.token.clone());
        // With [http] tls_cert, https:// (its certificate checked against the system's trust store).
        let scheme = if config.http.tls() { "https" } else { "http" };
        Ok(rowhook::client::Api::new(&format!("{scheme}://{}", config.http.listen), token))
    }
}

#[derive(Clone, Copy, ValueEnum)]
enum Reset {
    Current,
    Earliest,
}

fn main() {
    let cli = Cli::parse();
    let result = actix_rt::System::new().block_on(async move { dispatch(cli.command).await });
    if let Err(e) = result {
        // The error and its causes, each said once (a source's message often repeats in its wrapper's).
        let error: &(dyn std::error::Error + 'static) = e.as_ref();
        eprintln!("rowhook: {}", rowhook::dburl::cause_once(error));
        std::process::exit(1);
    }
}

fn load(path: &std::path::Path) -> anyhow::Result<Config> {
    let config = Config::load(path)?;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(&config.log.level))
        .with_context(|| format!("log.level {:?}", config.log.level))?;
    // Colours only on a terminal: journald, files and log shippers get plain text.
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    match config.log.format {
        LogFormat::Text => logs.init(),
        LogFormat::Json => logs.json().with_current_span(false).with_span_list(false).init(),
    }
    Ok(config)
}

async fn dispatch(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Run { config, reset_position } => {
            let config = load(&config)?;
            let listener = std::net::TcpListener::bind(config.http.listen)
                .with_context(|| format!("cannot listen on {} (http.listen)", config.http.listen))?;
            let reset = reset_position.map(|r| match r {
                Reset::Current => ResetPosition::Current,
                Reset::Earliest => ResetPosition::Earliest,
            });
            daemon::run(config, listener, shutdown_signal(), reset).await?;
            Ok(())
        }
        Command::Migrate { config } => {
            let config = load(&config)?;
            let store = daemon::state_store(&config).await?;
            let applied = store.migrate().await?;
            if applied.is_empty() {
                println!("state database is up to date");
            } else {
                for m in applied {
                    println!("applied {m}");
                }
            }
            Ok(())
        }
        Command::CheckConfig { config } => {
            let config = load(&config)?;
            check_config(&config).await
        }
        Command::Listen { secret, listen } => rowhook::listen::listen(&secret, listen).await,
        Command::Backfill { api, webhook, event_type, filter, limit, no_wait } => {
            let filter = filter.map(|f| serde_json::from_str(&f)).transpose().context("--filter is not JSON (a list of tests, docs/backfill.md)")?;
            let args = rowhook::client::BackfillArgs { webhook, event_type, filter, limit, wait: !no_wait };
            Ok(rowhook::client::backfill(&api.api()?, args).await?)
        }
        Command::Replay { api, webhook, since, until, status, event_types } => {
            let args = rowhook::client::ReplayArgs { webhook, since, until, status, event_types };
            let replayed = rowhook::client::replay(&api.api()?, args).await?;
            println!("{replayed} deliveries of webhook {webhook} go out again");
            Ok(())
        }
        Command::HashToken { new } => hash_token(new),
        Command::RotateSecretsKey { config } => {
            let config = load(&config)?;
            rotate_secrets_key(&config).await
        }
    }
}

/// `rowhook rotate-secrets-key`: every stored secret sealed with the current key.
async fn rotate_secrets_key(config: &Config) -> anyhow::Result<()> {
    let keys = daemon::keyring(config)?;
    let Some(current) = keys.current_id().map(str::to_string) else {
        anyhow::bail!(
            "no [admin] secrets_key to seal with: set it (or secrets_key_file, or ROWHOOK__ADMIN__SECRETS_KEY) to a key made with \
             `openssl rand -base64 32`, and the old key, if any, as secrets_key_previous"
        );
    };
    let store = daemon::state_store(config).await?;
    store.check_migrated().await?;
    let report = store.reseal_secrets(&keys).await;
    store.disconnect().await;
    let report = report?;
    println!(
        "sealed with key id {current}: {} secret{} now, {} already; {} changed meanwhile (run again)",
        report.resealed,
        if report.resealed == 1 { "" } else { "s" },
        report.current,
        report.changed_meanwhile
    );
    for (id, column, error) in &report.failed {
        println!("webhook {id}, {column}: {error}");
    }
    if !report.failed.is_empty() {
        anyhow::bail!(
            "{} secret{} could not be opened, listed above: they are left as they are",
            report.failed.len(),
            if report.failed.len() == 1 { "" } else { "s" }
        );
    }
    Ok(())
}

/// `rowhook hash-token`: the hash of the token on standard input, or a new token and its hash.
fn hash_token(new: bool) -> anyhow::Result<()> {
    use rowhook::admin::auth;
    if new {
        let token = auth::generate_token();
        println!("token: {token}");
        println!("hash:  {}", auth::hash_token(&token));
        return Ok(());
    }
    let stdin = std::io::stdin();
    let mut text = String::new();
    if stdin.is_terminal() {
        eprint!("token (then Enter): ");
        stdin.read_line(&mut text).context("reading the token")?;
    } else {
        std::io::Read::read_to_string(&mut stdin.lock(), &mut text).context("reading the token from standard input")?;
    }
    let token = text.strip_suffix('\n').map(|t| t.strip_suffix('\r').unwrap_or(t)).unwrap_or(&text);
    if token.is_empty() {
        anyhow::bail!("no token on standard input: printf %s \"$TOKEN\" | rowhook hash-token");
    }
    println!("{}", auth::hash_token(token));
    Ok(())
}

/// `rowhook check-config`: the source (settings, grants, rules) and the state
/// database, every problem listed on stdout; an error when any is an error.
async fn check_config(config: &Config) -> anyhow::Result<()> {
    let mut errors = match daemon::check(config).await {
        Ok(checked) => {
            println!(
                "ok: {} at database `{}`; binlog ROW/FULL{}; {} rules on {} tables",
                checked.server.version,
                checked.database,
                if checked.server.full_row_metadata { ", column names in the binlog" } else { ", column names from information_schema" },
                config.events.len(),
                checked.tables.len()
            );
            if !checked.warnings.is_empty() {
                print!("{}", Problems(checked.warnings).list().trim_start_matches('\n'));
                println!();
            }
            for rule in &config.events {
                let ops: Vec<&str> = rule.operations.iter().map(|o| o.as_str()).collect();
                println!("  {:<16} <- {} {}", rule.event_type, rule.table, ops.join("/"));
            }
            0
        }
        Err(RunError::Schema(SchemaError::Refused(problems))) => {
            println!("{problems}");
            problems.errors()
        }
        Err(other) => return Err(other.into()),
    };
    let warnings = daemon::config_warnings(config);
    if !warnings.is_empty() {
        println!("config:{}", Problems(warnings).list());
    }
    // The files parse (checked at load); here also whether rustls can use the key and it is the certificate's.
    match rowhook::admin::tls::CertResolver::load(&config.http) {
        Ok(Some(_)) => println!("https: the certificate of [http] tls_cert and its key load"),
        Ok(None) => {}
        Err(e) => {
            println!("error: {e}");
            errors += 1;
        }
    }
    let store = daemon::state_store(config).await?;
    match store.check_migrated().await {
        Ok(()) => println!("state database: migrated"),
        Err(e @ StoreError::NotMigrated { .. }) => {
            println!("error: {e}");
            errors += 1;
        }
        Err(e) => return Err(e.into()),
    }
    store.disconnect().await;
    let state = rowhook::dburl::opts(config.state_url())?;
    let lock = rowhook::state::instance::lock_name(state.db_name().unwrap_or_default());
    match rowhook::state::instance::holder(&state, &lock).await? {
        None => println!("instance lock `{lock}`: free (`rowhook run` becomes the active instance)"),
        Some(session) => println!(
            "instance lock `{lock}`: held by connection {session} on the state database \
             (another rowhook is active; `rowhook run` stands by until it stops)"
        ),
    }
    if errors > 0 {
        anyhow::bail!(
            "check-config found {errors} error{}, listed above: `rowhook run` refuses to start until they are fixed",
            if errors == 1 { "" } else { "s" }
        );
    }
    Ok(())
}

/// Resolves on SIGTERM or Ctrl-C.
async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(term) => term,
            Err(_) => return ctrl_c.await.unwrap_or(()),
        };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
