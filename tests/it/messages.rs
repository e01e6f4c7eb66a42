//! What the built binary says when something is wrong before it reads a
//! single event: a mistake in the config located (file and line, or the
//! variable) with the key meant.

use std::path::{Path, PathBuf};
use std::process::Command;

const SHIPPED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/config/rowhook.toml");

/// What one run of the binary left: its exit status, stdout and stderr.
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
