//! MariaDB's GTIDs: its GTID and GTID_LIST events, which mysql_common leaves
//! undecoded, and the GTID state (`domain-server-sequence` per replication
//! domain, `0-1-42,1-1-7`) the checkpoint stores and a restart resumes from
//! (`@slave_connect_state`). MySQL's GTID sets are [`super::gtid`].

use std::collections::BTreeMap;

/// `domain-server-sequence` from a MariaDB GTID event body
/// (sequence u64, domain u32, flags u8; little-endian).
pub(crate) fn mariadb_gtid(data: &[u8], server_id: u32) -> Option<(u32, u32, u64)> {
    let sequence = u64::from_le_bytes(data.get(0..8)?.try_into().ok()?);
    let domain = u32::from_le_bytes(data.get(8..12)?.try_into().ok()?);
    Some((domain, server_id, sequence))
}

/// The GTIDs of a MariaDB GTID_LIST event body: a count (u32, low 28 bits),
/// then (domain u32, server u32, sequence u64) each; little-endian.
pub(crate) fn mariadb_gtid_list(data: &[u8]) -> Option<Vec<(u32, u32, u64)>> {
    let count = u32::from_le_bytes(data.get(0..4)?.try_into().ok()?) & 0x0fff_ffff;
    let mut out = Vec::new();
    for k in 0..count as usize {
        let at = 4 + k * 16;
        let entry = data.get(at..at + 16)?;
        out.push((
            u32::from_le_bytes(entry[0..4].try_into().ok()?),
            u32::from_le_bytes(entry[4..8].try_into().ok()?),
            u64::from_le_bytes(entry[8..16].try_into().ok()?),
        ));
    }
    Some(out)
}

/// `0-1-42,1-1-7` -> {0: (1, 42), 1: (1, 7)}; parts that do not parse are skipped.
pub fn parse_gtid_state(state: &str) -> BTreeMap<u32, (u32, u64)> {
    state
        .split(',')
        .filter_map(|part| {
            let mut it = part.trim().splitn(3, '-');
            let domain = it.next()?.parse().ok()?;
            let server = it.next()?.parse().ok()?;
            let sequence = it.next()?.parse().ok()?;
            Some((domain, (server, sequence)))
        })
        .collect()
}

/// The inverse of [`parse_gtid_state`], domains in order.
pub fn format_gtid_state(state: &BTreeMap<u32, (u32, u64)>) -> String {
    state.iter().map(|(d, (s, n))| format!("{d}-{s}-{n}")).collect::<Vec<_>>().join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mariadb_gtid_body() {
        let mut body = 42u64.to_le_bytes().to_vec();
        body.extend(1u32.to_le_bytes());
        body.push(0);
        assert_eq!(mariadb_gtid(&body, 7), Some((1, 7, 42)));
        assert_eq!(mariadb_gtid(&[1, 2], 7), None);
    }
}
