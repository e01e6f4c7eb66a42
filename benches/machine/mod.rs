//! How busy and how fast the machine was while the benchmark ran.
//!
//! The benchmark shares a VM whose speed changes by up to 3x between runs
//! (other tenants on the host, other work on the machine). A figure alone
//! cannot tell a slower rowhook from a slower machine, so every report says:
//! - the **CPU steal** over the run (time the hypervisor gave to others while
//!   this VM wanted to run; `/proc/stat`),
//! - the CPU time **other processes** of this machine used over the run (all
//!   busy time minus this benchmark, its children and the MariaDB server),
//! - a **speed probe**: a fixed single-threaded job (SHA-256 of 256 MiB) timed
//!   at the start and at the end; the same binary on an idle machine of the
//!   same kind takes the same time, so runs can be compared by it.

use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

/// USER_HZ on Linux: the unit of `/proc/stat` and `/proc/PID/stat`.
const TICKS_PER_SECOND: u64 = 100;

/// CPU counters at one moment.
#[derive(Clone, Copy, Default)]
pub struct Snapshot {
    /// All CPUs: user + nice + system + irq + softirq (ticks).
    busy: u64,
    /// All CPUs: steal (ticks).
    steal: u64,
    /// All CPUs: every field (ticks).
    total: u64,
    /// This process and its waited-for children: utime + stime + cutime + cstime (ticks).
    own: u64,
    /// The MariaDB server (ticks).
    server: u64,
}

impl Snapshot {
    pub fn take(server_pid: Option<u32>) -> Snapshot {
        let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
        // cpu  user nice system idle iowait irq softirq steal guest guest_nice
        let cpu: Vec<u64> = stat
            .lines()
            .next()
            .unwrap_or("")
            .split_whitespace()
            .skip(1)
            .map(|f| f.parse().unwrap_or(0))
            .collect();
        let field = |i: usize| cpu.get(i).copied().unwrap_or(0);
        Snapshot {
            busy: field(0) + field(1) + field(2) + field(5) + field(6),
            steal: field(7),
            total: (0..8).map(field).sum(),
            own: process_ticks("self", 4),
            server: server_pid.map_or(0, |pid| process_ticks(&pid.to_string(), 2)),
        }
    }
}

/// utime, stime (and with `fields = 4` also cutime, cstime) of a process, in ticks.
fn process_ticks(pid: &str, fields: usize) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces) start at ") ";
    // utime is the 14th field of the line, the 12th after the name.
    let rest: Vec<&str> = stat.rsplit_once(") ").map_or(vec![], |(_, rest)| rest.split_whitespace().collect());
    (11..11 + fields).filter_map(|i| rest.get(i)?.parse::<u64>().ok()).sum()
}

/// Times the speed probe: SHA-256 over 256 MiB, one thread.
pub fn speed_probe() -> Duration {
    let block = vec![0x5au8; 1 << 20];
    let started = Instant::now();
    let mut hasher = Sha256::new();
    for _ in 0..256 {
        hasher.update(&block);
    }
    std::hint::black_box(hasher.finalize());
    started.elapsed()
}

/// The report's lines about the machine over the run between `start` and `end`.
pub fn describe(start: Snapshot, end: Snapshot, probe_start: Duration, probe_end: Duration) -> Vec<(String, String)> {
    let total = end.total.saturating_sub(start.total).max(1) as f64;
    let steal = end.steal.saturating_sub(start.steal) as f64;
    let ours = end.own.saturating_sub(start.own) + end.server.saturating_sub(start.server);
    let others = end.busy.saturating_sub(start.busy).saturating_sub(ours);
    let seconds = |ticks: u64| ticks as f64 / TICKS_PER_SECOND as f64;
    vec![
        (
            "load during the run".into(),
            format!(
                "CPU steal {:.1}% of the machine's time; other processes {:.1} s of CPU ({:.1}%)",
                steal * 100.0 / total,
                seconds(others),
                others as f64 * 100.0 / total
            ),
        ),
        (
            "speed probe".into(),
            format!(
                "SHA-256 of 256 MiB on one thread: {:.0} ms at the start, {:.0} ms at the end (compare runs by it)",
                probe_start.as_secs_f64() * 1e3,
                probe_end.as_secs_f64() * 1e3
            ),
        ),
    ]
}
