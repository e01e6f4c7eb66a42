//! The signature verification of `rowhook listen` (`rowhook::listen::verdict`):
//! any secret, headers, body and clock must give a verdict, never a panic; and
//! what rowhook signs must verify, and stop verifying when the body changes.
//! No committed seeds: the input is read by `arbitrary`, whose byte layout is its own.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use rowhook::delivery::signing::{self, SigningKey};
use rowhook::listen::{verdict, Signed};

#[derive(Debug, Arbitrary)]
struct Input<'a> {
    secret: &'a str,
    signature: &'a str,
    id: &'a str,
    timestamp: &'a str,
    seed_signature: &'a str,
    body: &'a [u8],
    now: i64,
}

fuzz_target!(|input: Input<'_>| {
    rowhook_fuzz::init();
    let Ok(key) = SigningKey::from_secret(input.secret) else { return };
    let signed = Signed { signature: input.signature, id: input.id, timestamp: input.timestamp, seed_signature: input.seed_signature };
    let _ = verdict(&key, &signed, input.body, input.now);

    // What rowhook sends verifies (as the daemon signs: every key, the seed's hex).
    if input.id.trim().is_empty() {
        return;
    }
    let timestamp = input.now.to_string();
    let signature = signing::standard_signature_header(std::slice::from_ref(&key), input.id, input.now, input.body);
    let seed_signature = signing::seed_signature(&key, input.body);
    let signed = Signed { signature: &signature, id: input.id, timestamp: &timestamp, seed_signature: &seed_signature };
    assert_eq!(verdict(&key, &signed, input.body, input.now).map(|_| ()), Ok(()), "{input:?}");
    // Another body, or a clock more than five minutes off, does not.
    let mut other = input.body.to_vec();
    other.push(b'x');
    assert!(verdict(&key, &signed, &other, input.now).is_err(), "{input:?}");
    if let Some(later) = input.now.checked_add(301) {
        assert!(verdict(&key, &signed, input.body, later).is_err(), "{input:?}");
    }
});
