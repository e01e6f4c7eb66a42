//! MySQL GTID sets: `3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5:7-9,<uuid>:1-3`.
//!
//! A MySQL server with `gtid_mode=ON` names every transaction `uuid:gno`
//! (MySQL 8.4+ also `uuid:tag:gno`). What a replica has read is a set of
//! them, kept as intervals of gnos per UUID (and tag): [`GtidSet`]. The
//! decoder adds each committed transaction's GTID to it, starting from the
//! checkpoint's set or from the PREVIOUS_GTIDS event at the start of a binlog
//! file; the checkpoint stores its text; a restart hands it to the server in
//! COM_BINLOG_DUMP_GTID ([`GtidSet::sids`]), which sends every transaction
//! not in it, whatever the server's binlog files are called.
//!
//! The text is MySQL's own (`@@gtid_executed`, `GTID_SUBSET()`): UUIDs in
//! lowercase and in order, intervals in order and merged (`1-5:6` is `1-6`),
//! a single gno without a dash (`:7`), tags after the untagged intervals of
//! their UUID (`uuid:1-5:tag:1-2`). MySQL separates UUIDs with `,\n`; rowhook
//! writes `,` and reads either.

use std::collections::BTreeMap;
use std::fmt;

use mysql_common::packets::{GnoInterval, Sid, Tag};

/// Why a GTID set's text does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GtidSetError {
    #[error("`{0}` is not a UUID")]
    Uuid(String),
    #[error("`{0}` is not a gno interval (`N` or `N-M`, 1 <= N <= M)")]
    Interval(String),
    #[error("`{0}` is not a GTID tag ([a-z_][a-z0-9_]*, at most 32 characters)")]
    Tag(String),
    #[error("`{0}` has no intervals")]
    NoIntervals(String),
}

/// A UUID (16 bytes) and a tag (empty: untagged).
type Tsid = ([u8; 16], String);

/// A set of MySQL GTIDs; see the module docs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GtidSet {
    /// Closed intervals of gnos, sorted, disjoint, not adjacent.
    intervals: BTreeMap<Tsid, Vec<(u64, u64)>>,
}

impl GtidSet {
    pub fn new() -> GtidSet {
        GtidSet::default()
    }

    pub fn is_empty(&self) -> bool {
        self.intervals.is_empty()
    }

    /// Parses MySQL's text; whitespace (such as the newline after each comma) is ignored.
    pub fn parse(text: &str) -> Result<GtidSet, GtidSetError> {
        let mut set = GtidSet::new();
        for part in text.split(',') {
            let part: String = part.chars().filter(|c| !c.is_whitespace()).collect();
            if part.is_empty() {
                continue;
            }
            let mut fields = part.split(':');
            let uuid = parse_uuid(fields.next().unwrap_or_default()).ok_or_else(|| GtidSetError::Uuid(part.clone()))?;
            let mut tag = String::new();
            let mut any = false;
            for field in fields {
                if field.starts_with(|c: char| c.is_ascii_digit()) {
                    let (start, end) = match field.split_once('-') {
                        Some((a, b)) => (a.parse::<u64>(), b.parse::<u64>()),
                        None => (field.parse::<u64>(), field.parse::<u64>()),
                    };
                    match (start, end) {
                        (Ok(start), Ok(end)) if start >= 1 && start <= end => set.add_interval(uuid, &tag, start, end),
                        _ => return Err(GtidSetError::Interval(field.to_string())),
                    }
                    any = true;
                } else if Tag::new(field).is_ok() {
                    tag = field.to_string();
                } else {
                    return Err(GtidSetError::Tag(field.to_string()));
                }
            }
            if !any {
                return Err(GtidSetError::NoIntervals(part));
            }
        }
        Ok(set)
    }

    /// Adds one transaction, `uuid[:tag]:gno`.
    pub fn add(&mut self, uuid: [u8; 16], tag: &str, gno: u64) {
        if gno == 0 {
            return; // not a GTID
        }
        let intervals = self.intervals.entry((uuid, tag.to_string())).or_default();
        // The usual case: the next gno of the last interval.
        match intervals.last_mut() {
            Some(last) if last.1.checked_add(1) == Some(gno) => last.1 = gno,
            Some(last) if last.0 <= gno && gno <= last.1 => {}
            _ => {
                intervals.push((gno, gno));
                normalize(intervals);
            }
        }
    }

    /// Adds the gnos `start..=end` of `uuid[:tag]`.
    pub fn add_interval(&mut self, uuid: [u8; 16], tag: &str, start: u64, end: u64) {
        if start == 0 || start > end {
            return;
        }
        let intervals = self.intervals.entry((uuid, tag.to_string())).or_default();
        intervals.push((start, end));
        normalize(intervals);
    }

    /// Adds every GTID of `other`.
    pub fn union(&mut self, other: &GtidSet) {
        for ((uuid, tag), intervals) in &other.intervals {
            for &(start, end) in intervals {
                self.add_interval(*uuid, tag, start, end);
            }
        }
    }

    /// Whether `uuid[:tag]:gno` is in the set.
    pub fn contains(&self, uuid: [u8; 16], tag: &str, gno: u64) -> bool {
        self.intervals
            .get(&(uuid, tag.to_string()))
            .is_some_and(|intervals| intervals.iter().any(|&(start, end)| start <= gno && gno <= end))
    }

    /// The set as COM_BINLOG_DUMP_GTID carries it: one [`Sid`] per UUID and
    /// tag, intervals with exclusive ends.
    pub fn sids(&self) -> Vec<Sid<'static>> {
        self.intervals
            .iter()
            .map(|((uuid, tag), intervals)| {
                let sid = Sid::new(*uuid)
                    .with_intervals(intervals.iter().map(|&(start, end)| GnoInterval::new(start, end.saturating_add(1))).collect());
                // Tags were validated when they were added.
                match Tag::new(tag.clone()) {
                    Ok(tag) if !tag.is_empty() => sid.with_tag(tag),
                    _ => sid,
                }
            })
            .collect()
    }
}

/// MySQL's text, with `,` between UUIDs.
impl fmt::Display for GtidSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut previous: Option<[u8; 16]> = None;
        for ((uuid, tag), intervals) in &self.intervals {
            if previous != Some(*uuid) {
                if previous.is_some() {
                    f.write_str(",")?;
                }
                write_uuid(f, uuid)?;
                previous = Some(*uuid);
            }
            if !tag.is_empty() {
                write!(f, ":{tag}")?;
            }
            for &(start, end) in intervals {
                if start == end {
                    write!(f, ":{start}")?;
                } else {
                    write!(f, ":{start}-{end}")?;
                }
            }
        }
        Ok(())
    }
}

/// Sorts and merges overlapping or adjacent intervals.
fn normalize(intervals: &mut Vec<(u64, u64)>) {
    intervals.sort_unstable();
    let mut merged: Vec<(u64, u64)> = Vec::with_capacity(intervals.len());
    for &(start, end) in intervals.iter() {
        match merged.last_mut() {
            Some(last) if start <= last.1.saturating_add(1) => last.1 = last.1.max(end),
            _ => merged.push((start, end)),
        }
    }
    *intervals = merged;
}

/// `3e11fa47-71ca-11e1-9e33-c80aa9429562` (either case) to its 16 bytes.
fn parse_uuid(text: &str) -> Option<[u8; 16]> {
    let groups: Vec<&str> = text.split('-').collect();
    if groups.iter().map(|g| g.len()).collect::<Vec<_>>() != [8, 4, 4, 4, 12] {
        return None;
    }
    let hex: String = groups.concat();
    let mut out = [0u8; 16];
    for (k, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(2 * k..2 * k + 2)?, 16).ok()?;
    }
    Some(out)
}

fn write_uuid(f: &mut fmt::Formatter<'_>, uuid: &[u8; 16]) -> fmt::Result {
    for (k, byte) in uuid.iter().enumerate() {
        if matches!(k, 4 | 6 | 8 | 10) {
            f.write_str("-")?;
        }
        write!(f, "{byte:02x}")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "3e11fa47-71ca-11e1-9e33-c80aa9429562";
    const B: &str = "e6e5ba2d-07e9-11ef-8b4a-0242ac110002";

    fn uuid(text: &str) -> [u8; 16] {
        parse_uuid(text).unwrap()
    }

    #[test]
    fn parse_and_format_as_mysql_prints_them() {
        for text in [
            "",
            "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5",
            "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5:7-9:11,e6e5ba2d-07e9-11ef-8b4a-0242ac110002:1-3",
            "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5:blue:1-2:red:7",
            "3e11fa47-71ca-11e1-9e33-c80aa9429562:9223372036854775806",
        ] {
            assert_eq!(GtidSet::parse(text).unwrap().to_string(), text);
        }
        // MySQL's own separator, upper case, unordered UUIDs and overlapping,
        // adjacent or unsorted intervals: the canonical text.
        let messy = format!("{},\n{}:7:1-3:4-5:9-10:8:6,\n{A}:20", B.to_uppercase() + ":3:1-2", A.to_uppercase());
        assert_eq!(GtidSet::parse(&messy).unwrap().to_string(), format!("{A}:1-10:20,{B}:1-3"));
    }

    #[test]
    fn bad_text_is_an_error() {
        assert!(matches!(GtidSet::parse("nope:1-2"), Err(GtidSetError::Uuid(_))));
        assert!(matches!(GtidSet::parse(&format!("{A}:0")), Err(GtidSetError::Interval(_))));
        assert!(matches!(GtidSet::parse(&format!("{A}:5-3")), Err(GtidSetError::Interval(_))));
        assert!(matches!(GtidSet::parse(&format!("{A}:1-x")), Err(GtidSetError::Interval(_))));
        assert!(matches!(GtidSet::parse(&format!("{A}:Bad:1")), Err(GtidSetError::Tag(_))));
        assert!(matches!(GtidSet::parse(A), Err(GtidSetError::NoIntervals(_))));
        assert!(matches!(GtidSet::parse("0-1-42"), Err(GtidSetError::Uuid(_))), "a MariaDB state is not a MySQL set");
    }

    #[test]
    fn adding_transactions_merges_intervals() {
        let mut set = GtidSet::new();
        for gno in [1, 2, 3, 5, 4, 3, 9] {
            set.add(uuid(A), "", gno);
        }
        assert_eq!(set.to_string(), format!("{A}:1-5:9"));
        set.add(uuid(A), "", 0);
        set.add(uuid(B), "", 7);
        set.add(uuid(A), "", 8);
        set.add(uuid(A), "", 6);
        assert_eq!(set.to_string(), format!("{A}:1-6:8-9,{B}:7"));
        set.add(uuid(A), "", 7);
        assert_eq!(set.to_string(), format!("{A}:1-9,{B}:7"));
        assert!(set.contains(uuid(A), "", 9) && !set.contains(uuid(A), "", 10) && !set.contains(uuid(B), "x", 7));
        set.add(uuid(A), "t1", 1);
        assert_eq!(set.to_string(), format!("{A}:1-9:t1:1,{B}:7"));

        let mut other = GtidSet::parse(&format!("{A}:10-20,{B}:1-6")).unwrap();
        other.union(&set);
        assert_eq!(other.to_string(), format!("{A}:1-20:t1:1,{B}:1-7"));
        let mut top = GtidSet::new();
        top.add(uuid(A), "", u64::MAX);
        top.add(uuid(A), "", u64::MAX - 1);
        assert_eq!(top.to_string(), format!("{A}:18446744073709551614-18446744073709551615"));
    }

    #[test]
    fn sids_for_com_binlog_dump_gtid() {
        let set = GtidSet::parse(&format!("{B}:1-3,{A}:1-5:7:tag_1:2")).unwrap();
        let sids = set.sids();
        // mysql_common prints a Sid as MySQL does: the same text, UUID by UUID.
        let texts: Vec<String> = sids.iter().map(|s| s.to_string()).collect();
        assert_eq!(texts, [format!("{A}:1-5:7"), format!("{A}:tag_1:2"), format!("{B}:1-3")]);
        assert_eq!(sids[0].intervals().iter().map(|i| (i.start(), i.end())).collect::<Vec<_>>(), [(1, 6), (7, 8)], "ends exclusive");
        assert_eq!(sids[1].tag().map(|t| t.as_str()), Some("tag_1"));
    }
}
