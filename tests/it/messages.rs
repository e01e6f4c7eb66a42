//! What the built binary says when something is wrong before it reads a
//! single event: a mistake in the config located (file and line, or the
//! variable) with the key meant; a database it cannot connect to named once,
//! with host, port and the setting, the cause once and what to check, and
//! never a password.

use std::path::{Path, PathBuf};
use std::process::Command;

use mysql_async::prelude::*;

use crate::support::mariadb;

const SHIPPED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/config/rowhook.toml");

/// What one run of the binary left: its exit status, stdout and stderr.
#[derive(Debug)]
struct Ran {
    success: bool,
    stdout: String,
    stderr: String,
}

/// `rowhook <command> --config <config>` with `env` added to this process's environment.
fn rowhook(command: &str, config: &Path, env: &[(&str, &str)]) -> Ran {
    let output = Command::new(crate::support::rowhook_bin())
        .args([command, "--config"])
        .arg(config)
        .envs(env.iter().copied())
        .env("ROWHOOK__LOG__LEVEL", "warn")
        .output()
        .expect("run the rowhook binary");
    Ran {
        success: output.status.success(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// The shipped config with `from` replaced by `to` (once, or the test fails), in a temporary file.
fn shipped_with(dir: &tempfile::TempDir, from: &str, to: &str) -> PathBuf {
    let text = std::fs::read_to_string(SHIPPED).unwrap();
    assert_eq!(text.matches(from).count(), 1, "{from:?} once in config/rowhook.toml");
    let path = dir.path().join("rowhook.toml");
    std::fs::write(&path, text.replace(from, to)).unwrap();
    path
}

/// The line (from 1) of the shipped config that holds `text`.
fn shipped_line(text: &str) -> usize {
    let config = std::fs::read_to_string(SHIPPED).unwrap();
    config.lines().position(|l| l.contains(text)).expect("in config/rowhook.toml") + 1
}

#[test]
fn a_misspelt_key_in_the_file_is_located_and_the_key_meant_named() {
    let dir = tempfile::tempdir().unwrap();
    let config = shipped_with(&dir, "\nheartbeat = ", "\nheartbaet = ");
    let line = shipped_line("heartbeat = ");
    for command in ["check-config", "run"] {
        let ran = rowhook(command, &config, &[]);
        assert!(!ran.success, "{command}: refused");
        assert_eq!(
            ran.stderr,
            format!(
                "rowhook: config: unknown key `heartbaet` in [source] ({}, line {line}): did you mean `heartbeat`?\n",
                config.display()
            ),
            "{command}"
        );
        assert_eq!(ran.stdout, "", "{command}");
    }
    let said = format!("unknown key `heartbaet` in [source] (config/rowhook.toml, line {line}): did you mean `heartbeat`?");
    assert!(readme().contains(&format!("``{said}``")), "README.md shows `{said}`");
}

/// README.md with its lines joined.
fn readme() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap().replace('\n', " ")
}

#[test]
fn a_misspelt_variable_is_named_with_the_variable_meant() {
    for command in ["check-config", "run"] {
        let ran = rowhook(command, Path::new(SHIPPED), &[("ROWHOOK__SOURCE__URLL", "mysql://rowhook:pw-in-env@db.invalid:3306/helpdesk")]);
        assert!(!ran.success, "{command}: refused");
        assert_eq!(
            ran.stderr,
            "rowhook: config: unknown key `urll` in [source], from the environment variable ROWHOOK__SOURCE__URLL: \
             did you mean ROWHOOK__SOURCE__URL?\n",
            "{command}"
        );
    }
    let said = "unknown key `urll` in [source], from the environment variable ROWHOOK__SOURCE__URLL: did you mean ROWHOOK__SOURCE__URL?";
    assert!(readme().contains(&format!("``{said}``")), "README.md shows `{said}`");
}

#[test]
fn a_rule_is_numbered_from_1_in_file_order() {
    // note.added is the sixth rule of the shipped config.
    let dir = tempfile::tempdir().unwrap();
    let config = shipped_with(&dir, "type = \"note.added\"\ntable = \"notes\"\noperations = [\"insert\"]", "type = \"note.added\"\ntable = \"notes\"\noperations = []");
    let ran = rowhook("check-config", &config, &[]);
    assert!(!ran.success);
    let line = shipped_line("type = \"note.added\"") + 2;
    assert_eq!(
        ran.stderr,
        format!(
            "rowhook: config: events rule 6 (note.added): operations: needs at least one of insert, update, delete ({}, line {line})\n",
            config.display()
        )
    );
}

/// A port nothing listens on (bound, then let go).
fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// `run` and `check-config` with `env` (and a free port to listen on), each refused.
fn both_refused(config: &Path, env: &[(&str, &str)]) -> [(&'static str, String); 2] {
    let listen = crate::rowhook::free_addr().to_string();
    ["run", "check-config"].map(|command| {
        let mut env = env.to_vec();
        env.push(("ROWHOOK__HTTP__LISTEN", &listen));
        let ran = rowhook(command, config, &env);
        assert!(!ran.success, "{command} refused: {ran:?}");
        (command, format!("{}{}", ran.stdout, ran.stderr))
    })
}

#[actix_rt::test]
async fn a_wrong_password_is_said_once_with_the_server_and_the_setting() {
    let server = mariadb::shared();
    let mut root = mysql_async::Conn::from_url(server.root_url()).await.unwrap();
    let user = format!("rh_pw_{}", std::process::id());
    root.query_drop(format!("CREATE USER IF NOT EXISTS '{user}'@'%' IDENTIFIED BY 'the-right-pw'")).await.unwrap();
    let url = format!("mysql://{user}:wrong-pw-4711@127.0.0.1:{}/helpdesk", server.port);
    for (command, output) in both_refused(Path::new(SHIPPED), &[("ROWHOOK__SOURCE__URL", &url)]) {
        assert_eq!(output.matches("Access denied").count(), 1, "{command}: the cause once: {output}");
        assert_eq!(output.matches("1045").count(), 1, "{command}: {output}");
        assert!(output.contains(&format!("cannot connect to 127.0.0.1:{}, the source database", server.port)), "{command}: {output}");
        assert!(output.contains("(from ROWHOOK__SOURCE__URL)"), "{command}: {output}");
        assert!(output.contains("Check the user name and password in that URL"), "{command}: {output}");
        assert!(!output.contains("wrong-pw-4711") && !output.contains("the-right-pw"), "{command}: no password: {output}");
        assert!(!output.contains("state database:"), "{command}: {output}");
        assert_eq!(output.lines().count(), 1, "{command}: one line: {output}");
    }
    root.query_drop(format!("DROP USER '{user}'@'%'")).await.unwrap();
}

#[test]
fn a_closed_port_set_in_the_file_is_said_once_with_its_line() {
    let port = closed_port();
    let dir = tempfile::tempdir().unwrap();
    let shipped = std::fs::read_to_string(SHIPPED).unwrap();
    let url_line = shipped.lines().find(|l| l.starts_with("url = ")).expect("[source] url in config/rowhook.toml");
    let config = shipped_with(&dir, url_line, &format!("url = \"mysql://rowhook:file-pw-0815@127.0.0.1:{port}/helpdesk\""));
    let setting = format!("(from [source] url in {}, line {})", config.display(), shipped_line(url_line));
    for (command, output) in both_refused(&config, &[]) {
        assert_eq!(output.matches("Connection refused").count(), 1, "{command}: the cause once: {output}");
        assert!(!output.contains("Input/output error"), "{command}: {output}");
        let role = match command {
            // run connects to the state database first: here, the source.
            "run" => "the source database, also used as the state database because [state] url is not set",
            _ => "the source database",
        };
        assert!(output.contains(&format!("cannot connect to 127.0.0.1:{port}, {role} {setting}")), "{command}: {output}");
        assert!(output.contains(&format!("Check that the server is running on 127.0.0.1 and listens on port {port}")), "{command}: {output}");
        assert!(!output.contains("file-pw-0815"), "{command}: no password: {output}");
        assert_eq!(output.lines().count(), 1, "{command}: one line: {output}");
    }
}

#[test]
fn a_closed_state_port_names_the_state_setting() {
    let (source_port, state_port) = (closed_port(), closed_port());
    let source = format!("mysql://rowhook:src-pw-1@127.0.0.1:{source_port}/helpdesk");
    let state = format!("mysql://rowhook:state-pw-2@127.0.0.1:{state_port}/rowhook");
    let env = [("ROWHOOK__SOURCE__URL", source.as_str()), ("ROWHOOK__STATE__URL", state.as_str())];
    let [(_, run), (_, check)] = both_refused(Path::new(SHIPPED), &env);
    // run checks the state database first, check-config the source first.
    assert!(run.contains(&format!("cannot connect to 127.0.0.1:{state_port}, the state database (from ROWHOOK__STATE__URL)")), "{run}");
    assert!(check.contains(&format!("cannot connect to 127.0.0.1:{source_port}, the source database (from ROWHOOK__SOURCE__URL)")), "{check}");
    for output in [run, check] {
        assert_eq!(output.matches("Connection refused").count(), 1, "{output}");
        assert!(!output.contains("-pw-"), "no password: {output}");
    }
}

#[test]
fn the_unknown_key_docs_events_md_shows_is_rowhooks() {
    let dir = tempfile::tempdir().unwrap();
    let shop = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/examples/shop-events.toml")).unwrap();
    let shipped = shop.find("type = \"order.shipped\"\ntable = ").expect("order.shipped in the example");
    let misspelt = format!("{}{}", &shop[..shipped], shop[shipped..].replacen("\ntable = ", "\ntabel = ", 1));
    let config = dir.path().join("shop.toml");
    std::fs::write(&config, misspelt).unwrap();
    let ran = rowhook("check-config", &config, &[("ROWHOOK__SOURCE__URL", "mysql://rowhook@127.0.0.1:1/shop")]);
    assert!(!ran.success);
    let said = ran.stderr.trim_end().strip_prefix("rowhook: config: ").expect(&ran.stderr).replace(&config.display().to_string(), "shop.toml");
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/events.md")).unwrap().replace('\n', " ");
    assert!(doc.contains(&format!("``{said}``")), "docs/events.md shows `{said}`");
}
