//! A test inside a network namespace of its own, whose loopback interface
//! also carries addresses this machine does not have ([`PRIVATE_V4`],
//! [`METADATA_V4`], [`ULA_V6`]) and whose `/etc/hosts` the test writes.
//!
//! Why: the SSRF tests must show that a private target receives nothing, and
//! that takes a real receiver listening at the private address. Outside a
//! namespace of its own a test must never send to such an address: it belongs
//! to some network, not to the test. Inside one, those addresses are the
//! namespace's own: a listener on `[::]` catches whatever a broken guard
//! would send, and every other address is unreachable (`ENETUNREACH`), so
//! nothing leaves the machine even then. The hosts file makes names resolve
//! through the system resolver (getaddrinfo) that rowhook uses in production,
//! with no test hook inside rowhook.
//!
//! How: the test calls [`enter`] first. In the test process, `enter` runs the
//! test binary again, for that one test, under `unshare --net --mount` (root
//! only); a shell brings `lo` up, adds the addresses, bind-mounts the hosts
//! file over `/etc/hosts` (in the new mount namespace only) and execs the
//! binary with `ROWHOOK_NETNS_CHILD` set; the parent passes when the child
//! reports its one test passed, and returns false. In the child, `enter`
//! checks that the addresses are there and returns true: the test runs. The
//! child starts its own private MariaDB, on the namespace's 127.0.0.1.
//!
//! Where namespaces cannot be made (not root, no `unshare`), the test prints
//! one line saying it is skipped and why, and passes; where it must run
//! (`CI=true`, or `ROWHOOK_REQUIRE_NETNS=1`) that is a failure instead
//! (`ROWHOOK_REQUIRE_NETNS=0` allows the skip in CI too).

use std::io::Write;
use std::net::{IpAddr, SocketAddr, TcpListener};
use std::process::Command;

/// A private (RFC 1918) address on the namespace's loopback.
pub const PRIVATE_V4: &str = "10.0.0.5";
/// The cloud metadata address, on the namespace's loopback.
pub const METADATA_V4: &str = "169.254.169.254";
/// A unique-local IPv6 address, on the namespace's loopback.
pub const ULA_V6: &str = "fd00::5";

const CHILD: &str = "ROWHOOK_NETNS_CHILD";

/// Brings up the namespace, then runs the command line it is given.
const SETUP: &str = r#"
ip link set lo up
ip addr add "$ROWHOOK_NETNS_V4"/32 dev lo
ip addr add "$ROWHOOK_NETNS_METADATA"/32 dev lo
ip -6 addr add "$ROWHOOK_NETNS_V6"/128 dev lo
mount --bind "$ROWHOOK_NETNS_HOSTS" /etc/hosts
exec "$0" "$@"
"#;

/// True in the namespace: run the test. False in the test process, after the
/// child ran the test (a failure there fails this test) or after the line
/// saying why it is skipped. `test` is the test's path as the harness names
/// it (`ssrf::some_test`); `hosts` are lines for `/etc/hosts`, added to the
/// `localhost` ones.
pub fn enter(test: &str, hosts: &str) -> bool {
    if std::env::var_os(CHILD).is_some() {
        for addr in [PRIVATE_V4, METADATA_V4, ULA_V6] {
            let ip: IpAddr = addr.parse().expect("address");
            if let Err(e) = TcpListener::bind(SocketAddr::new(ip, 0)) {
                panic!("{CHILD} is set but {addr} is not an address here ({e}): run this test without it, through support::netns::enter");
            }
        }
        return true;
    }
    if let Some(why) = cannot_make_namespaces() {
        let var = |name: &str| std::env::var(name).ok();
        let (require, ci) = (var("ROWHOOK_REQUIRE_NETNS"), var("CI"));
        if required(require.as_deref(), ci.as_deref()) {
            panic!(
                "{test} needs a network namespace and {why}; it must run here ({}; ROWHOOK_REQUIRE_NETNS=0 skips it instead)",
                match require.as_deref() {
                    Some(v) if !v.trim().is_empty() => format!("ROWHOOK_REQUIRE_NETNS={v}"),
                    _ => format!("CI={}", ci.unwrap_or_default()),
                }
            );
        }
        // Straight to stderr: the harness captures print!/eprint! of passing tests.
        let _ = writeln!(std::io::stderr(), "{test}: skipped: it needs a network namespace (root and unshare) and {why}");
        return false;
    }
    run_child(test, hosts);
    false
}

/// Whether an unavailable namespace fails rather than skips:
/// `ROWHOOK_REQUIRE_NETNS` when set, else whether this runs under CI.
fn required(require: Option<&str>, ci: Option<&str>) -> bool {
    let yes = |v: &str| !matches!(v.trim().to_ascii_lowercase().as_str(), "" | "0" | "false" | "no");
    match require {
        Some(v) if !v.trim().is_empty() => yes(v),
        _ => ci.is_some_and(yes),
    }
}

/// Why no namespace can be made here, or `None` when one can.
fn cannot_make_namespaces() -> Option<String> {
    match Command::new("unshare").args(["--net", "--mount", "ip", "link", "set", "lo", "up"]).output() {
        Err(e) => Some(format!("unshare could not be run ({e}; it is in util-linux)")),
        Ok(out) if !out.status.success() => Some(format!(
            "`unshare --net --mount ip link set lo up` failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )),
        Ok(_) => None,
    }
}

fn run_child(test: &str, hosts: &str) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let hosts_file = dir.path().join("hosts");
    std::fs::write(&hosts_file, format!("127.0.0.1 localhost\n::1 localhost\n{hosts}\n")).expect("write hosts");
    let exe = std::env::current_exe().expect("the test binary");
    let out = Command::new("unshare")
        .args(["--net", "--mount", "--", "sh", "-ec", SETUP])
        .arg(&exe)
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env(CHILD, "1")
        .env("ROWHOOK_NETNS_HOSTS", &hosts_file)
        .env("ROWHOOK_NETNS_V4", PRIVATE_V4)
        .env("ROWHOOK_NETNS_METADATA", METADATA_V4)
        .env("ROWHOOK_NETNS_V6", ULA_V6)
        .output()
        .expect("run unshare");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // "1 passed": the filter found the test and it ran (0 passed would be a
    // misspelt name, not a success).
    assert!(
        out.status.success() && stdout.contains("test result: ok. 1 passed"),
        "{test} in its network namespace: {}\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        tail(&stdout, 80),
        tail(&stderr, 40)
    );
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

#[test]
fn an_unavailable_namespace_skips_with_a_line_and_fails_where_required() {
    assert!(!required(None, None));
    assert!(required(None, Some("true")));
    assert!(!required(None, Some("false")));
    assert!(required(Some("1"), None));
    assert!(!required(Some("0"), Some("true")), "an explicit 0 allows the skip in CI");
    assert!(required(Some(""), Some("true")), "an empty value is unset");
}
