//! The config file and its `[[events]]` rules: the input is the TOML text, up
//! to a first NUL byte, then a JSON array of column values. Loading must never
//! panic (only refuse, with a message); a config that loads maps an insert, an
//! update and a delete of each rule's table, its columns taking the values in
//! turn, and renders the events as the router would. Seeds: `fuzz/seeds/rules/`.
#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use rowhook::config::{Config, Operation};
use rowhook::events::mapping::Mapper;
use rowhook::source::decoder::{Columns, RowChange};
use rowhook::source::rows::RowImage;
use serde_json::{json, Value};

fuzz_target!(|data: &[u8]| {
    rowhook_fuzz::init();
    let (text, rest) = match data.iter().position(|b| *b == 0) {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, &[][..]),
    };
    let Ok(text) = std::str::from_utf8(text) else { return };
    let Ok(config) = Config::from_toml(text) else { return };
    let values: Vec<Value> = match serde_json::from_slice::<Value>(rest) {
        Ok(Value::Array(values)) if !values.is_empty() => values,
        _ => vec![json!(1), json!("open"), Value::Null, json!({"a": [1, 2.5, "x"]}), json!(-7)],
    };
    let mapper = Mapper::new(&config.events);
    for rule in &config.events {
        let names: Vec<String> = match mapper.reads(&rule.table) {
            Some(Columns::Named(names)) => {
                let mut names: Vec<String> = names.iter().cloned().collect();
                names.sort();
                names
            }
            _ => ["id", "status", "body"].map(String::from).to_vec(),
        };
        let image = |shift: usize| RowImage {
            columns: names.iter().enumerate().map(|(i, n)| (Arc::from(n.as_str()), values[(i + shift) % values.len()].clone())).collect(),
        };
        let (before, after) = (image(0), image(1));
        for (operation, before, after) in [
            (Operation::Insert, None, Some(&after)),
            (Operation::Update, Some(&before), Some(&after)),
            (Operation::Update, Some(&before), Some(&before)),
            (Operation::Delete, Some(&before), None),
        ] {
            let change = RowChange { table: &rule.table, operation, before, after };
            for event in mapper.map(&change) {
                let _ = serde_json::to_string(&event.data);
            }
            for row in mapper.map_serialized(&change) {
                let _: Value = serde_json::from_str(&row.data).expect("the data rowhook sends is JSON");
            }
        }
    }
});
