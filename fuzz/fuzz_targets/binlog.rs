//! The binlog decoder: the input is a binlog (magic bytes optional), cut into
//! events by their headers, with CRC32s made valid; every table its table maps
//! name is mapped by a rule reading every column. Seeds: `make fuzz` cuts the
//! fixture binlogs (`fuzz/seed-binlogs.py`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    rowhook_fuzz::init();
    rowhook_fuzz::feed_binlog(data);
});
