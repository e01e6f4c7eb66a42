//! Checks that keep corrupt binlog data away from parsers that trust it.
//!
//! mysql_common sizes buffers from the counts and lengths in an event
//! (DECIMAL precision, ENUM/SET value lists, PREVIOUS_GTIDS counts). No server
//! writes values that would make those sizes absurd, but a corrupt file or a
//! hostile stream can, and an allocation of 2^56 bytes aborts the process (a
//! panic can be caught; an abort cannot). These read such fields here, within
//! the event's bytes, before mysql_common does.

use mysql_common::binlog::events::TableMapEvent;
use mysql_common::constants::ColumnType;

/// The first DECIMAL column whose table-map metadata no server writes (a
/// scale above the precision, a precision above 65): mysql_common sizes its
/// read buffer from them, and such a pair would abort the process.
pub(crate) fn impossible_decimal(tme: &TableMapEvent<'_>) -> Option<usize> {
    (0..usize::try_from(tme.columns_count()).unwrap_or(0)).find(|&i| {
        matches!(tme.get_column_type(i), Ok(Some(ColumnType::MYSQL_TYPE_NEWDECIMAL)))
            && match tme.get_column_metadata(i) {
                Some(&[precision, scale, ..]) => precision > 65 || scale > 38 || scale > precision,
                _ => true,
            }
    })
}

/// The string values of each ENUM or SET column, from a table map's
/// ENUM_STR_VALUE or SET_STR_VALUE field: per column a length-encoded count,
/// then that many length-encoded strings. Read here, within the field's
/// bytes: mysql_common reserves room for the count it reads first, and a
/// corrupt count would abort the process. Malformed: what came before it.
pub(crate) fn variant_lists(mut raw: &[u8]) -> Vec<Vec<String>> {
    let mut lists = Vec::new();
    while !raw.is_empty() {
        let Some(count) = lenenc_int(&mut raw) else { break };
        let mut values = Vec::new();
        for _ in 0..count {
            let Some(value) = lenenc_int(&mut raw).and_then(|n| usize::try_from(n).ok()).and_then(|n| {
                let (value, rest) = (raw.get(..n)?, raw.get(n..)?);
                raw = rest;
                Some(value)
            }) else {
                return lists;
            };
            values.push(String::from_utf8_lossy(value).into_owned());
        }
        lists.push(values);
    }
    lists
}

/// A length-encoded integer of the protocol, taken off the front of `raw`.
pub(crate) fn lenenc_int(raw: &mut &[u8]) -> Option<u64> {
    let (&first, rest) = raw.split_first()?;
    let width = match first {
        0..=0xfa => {
            *raw = rest;
            return Some(u64::from(first));
        }
        0xfc => 2,
        0xfd => 3,
        0xfe => 8,
        _ => return None,
    };
    let bytes = rest.get(..width)?;
    *raw = &rest[width..];
    let mut value = [0u8; 8];
    value[..width].copy_from_slice(bytes);
    Some(u64::from_le_bytes(value))
}

/// Whether a MySQL PREVIOUS_GTIDS event's counts fit in its bytes (8-byte
/// count of server UUIDs, each with a 16-byte UUID, an 8-byte count of
/// intervals and 16 bytes per interval). mysql_common reserves room for the
/// counts it reads; a corrupt one would abort the process.
pub(crate) fn previous_gtids_fit(data: &[u8]) -> bool {
    let count = |at: usize| data.get(at..at + 8).map(|b| u64::from_le_bytes(b.try_into().unwrap_or([0xff; 8])));
    let Some(sids) = count(0) else { return false };
    let mut at = 8usize;
    for _ in 0..sids {
        let Some(intervals) = count(at + 16) else { return false };
        let Some(next) = usize::try_from(intervals).ok().and_then(|n| n.checked_mul(16)).and_then(|n| n.checked_add(at + 24)) else {
            return false;
        };
        if next > data.len() {
            return false;
        }
        at = next;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enum_and_set_values_are_read_within_their_bytes() {
        // Two columns: ('a', 'bc') and ('x').
        let raw = [2, 1, b'a', 2, b'b', b'c', 1, 1, b'x'];
        assert_eq!(variant_lists(&raw), vec![vec!["a".to_string(), "bc".to_string()], vec!["x".to_string()]]);
        // A count of 2^56 with two bytes behind it: what came before, no allocation for the count.
        let corrupt = [1, 1, b'a', 0xfe, 0, 0, 0, 0, 0, 0, 0, 1, 1, b'z'];
        assert_eq!(variant_lists(&corrupt), vec![vec!["a".to_string()]]);
        assert_eq!(variant_lists(&[1, 5, b'a']), Vec::<Vec<String>>::new(), "a value longer than the bytes left");
        let mut wide: &[u8] = &[0xfc, 0x34, 0x12, 9];
        assert_eq!(lenenc_int(&mut wide), Some(0x1234));
        assert_eq!(wide, &[9]);
        assert_eq!(lenenc_int(&mut &[0xfb][..]), None);
    }

    #[test]
    fn a_previous_gtids_event_must_hold_the_uuids_and_intervals_it_counts() {
        let mut event = 1u64.to_le_bytes().to_vec();
        event.extend([7u8; 16]); // server UUID
        event.extend(1u64.to_le_bytes()); // one interval
        event.extend(1u64.to_le_bytes());
        event.extend(6u64.to_le_bytes());
        assert!(previous_gtids_fit(&event));
        assert!(previous_gtids_fit(&0u64.to_le_bytes()), "no UUIDs");
        let mut many_uuids = event.clone();
        many_uuids[..8].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(!previous_gtids_fit(&many_uuids));
        let mut many_intervals = event.clone();
        many_intervals[24..32].copy_from_slice(&(u64::MAX / 2).to_le_bytes());
        assert!(!previous_gtids_fit(&many_intervals));
        assert!(!previous_gtids_fit(&event[..30]), "cut short");
    }
}
