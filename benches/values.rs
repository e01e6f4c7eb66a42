//! Column values to JSON text, timed per case: the part of decoding that
//! [`rowhook::source::value::to_json`] and serde_json's writer do for every value a
//! rule reads, without the binlog around it.
//!
//! `benches/decode_file.rs` measures a whole workload's decoding; this one
//! isolates the conversions a change to `src/value.rs` or to serde_json's
//! features touches (numbers, MariaDB JSON columns, text in each kind of
//! character set), so a before/after comparison shows where the time went.
//! Each case converts its value and writes the JSON into a reused buffer;
//! the figure is the median of several runs of many iterations, in
//! nanoseconds per value (or per row for the row case).
//!
//! ```text
//! cargo bench --bench values [-- --iterations N --runs R --case NAME]
//! ```
//!
//! `--case` runs only the case named NAME (or those whose name contains it), for exact
//! instruction counts of one case on a busy machine:
//! `valgrind --tool=callgrind --collect-atstart=no --toggle-collect='values::run'
//! target/release/deps/values-* --case sjis --runs 1 --iterations 10000`
//! (instructions / iterations = instructions per value).

use std::hint::black_box;
use std::time::Instant;

use mysql_common::binlog::value::BinlogValue;
use mysql_common::value::Value;
use rowhook::source::value::{to_json, Charset, ColumnKind};

type BoxError = Box<dyn std::error::Error>;

/// A MariaDB JSON column of an order, with integers, decimals and nesting.
const ORDER_JSON: &str = r#"{"order_id": 1234567, "customer": {"id": 98765, "email": "jane@example.com"}, "total": 219.97, "currency": "EUR", "items": [{"sku": "A-1001", "qty": 2, "price": 49.99}, {"sku": "B-2002", "qty": 1, "price": 119.99}], "discount": 0.1, "paid": true, "note": null}"#;
/// The helpdesk schema's `emails.to_addresses`.
const ADDRESSES_JSON: &str = r#"["support@example.com", "jane.doe@example.org"]"#;

fn main() -> Result<(), BoxError> {
    let (mut iterations, mut runs, mut only) = (200_000usize, 7usize, String::new());
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{a} needs a value"));
        match a.as_str() {
            "--iterations" => iterations = value()?.parse()?,
            "--runs" => runs = value()?.parse()?,
            "--case" => only = value()?,
            "--bench" => {} // added by `cargo bench`
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    let bytes = |s: &str| BinlogValue::Value(Value::Bytes(s.as_bytes().to_vec()));
    let encoded = |charset: &str, text: &str| {
        let encoding = match charset {
            "sjis" => encoding_rs::SHIFT_JIS,
            "big5" => encoding_rs::BIG5,
            "gbk" => encoding_rs::GBK,
            "cp1251" => encoding_rs::WINDOWS_1251,
            _ => encoding_rs::WINDOWS_1252,
        };
        BinlogValue::Value(Value::Bytes(encoding.encode(text).0.into_owned()))
    };
    let japanese = "日本語のテキスト、カタカナとひらがな。".repeat(4);
    let chinese = "繁體中文的文字，這是一個測試。".repeat(4);
    let simplified = "中文文本，这是一个测试。".repeat(4);
    let cases: Vec<(&str, Vec<(BinlogValue<'static>, ColumnKind)>)> = vec![
        ("BIGINT UNSIGNED", vec![(BinlogValue::Value(Value::UInt(1_234_567_890)), ColumnKind::Integer)]),
        ("INT", vec![(BinlogValue::Value(Value::Int(-42)), ColumnKind::Integer)]),
        ("DOUBLE", vec![(BinlogValue::Value(Value::Double(1234.5678)), ColumnKind::Float)]),
        ("DECIMAL", vec![(bytes("12345.67"), ColumnKind::Decimal)]),
        ("JSON (MariaDB) addresses", vec![(bytes(ADDRESSES_JSON), ColumnKind::Json)]),
        ("JSON (MariaDB) order, 12 numbers", vec![(bytes(ORDER_JSON), ColumnKind::Json)]),
        ("VARCHAR utf8mb4, 64 chars", vec![(bytes(&"héllo wörld, ".repeat(5)[..64]), ColumnKind::Text(Charset::Utf8))]),
        ("VARCHAR latin1, 65 chars", vec![(encoded("latin1", &"café crème € ".repeat(5)), ColumnKind::Text(Charset::Latin1))]),
        ("VARCHAR cp1251, 65 chars", vec![(encoded("cp1251", &"Привет, мир! ".repeat(5)), ColumnKind::Text(Charset::from_name("cp1251")))]),
        ("VARCHAR sjis, 76 chars", vec![(encoded("sjis", &japanese), ColumnKind::Text(Charset::from_name("sjis")))]),
        // 0x8160 (encoding_rs: U+FF5E), MariaDB's sjis U+301C, four times.
        ("VARCHAR sjis, 76 chars, 4 of them 0x8160", vec![(encoded("sjis", &japanese.replace('、', "～")), ColumnKind::Text(Charset::from_name("sjis")))]),
        ("VARCHAR big5, 60 chars", vec![(encoded("big5", &chinese), ColumnKind::Text(Charset::from_name("big5")))]),
        ("VARCHAR gbk, 48 chars", vec![(encoded("gbk", &simplified), ColumnKind::Text(Charset::from_name("gbk")))]),
        (
            "row: 4 integers, DATETIME, 2 VARCHARs, 2 JSON",
            vec![
                (BinlogValue::Value(Value::UInt(1_234_567)), ColumnKind::Integer),
                (BinlogValue::Value(Value::UInt(98_765)), ColumnKind::Integer),
                (BinlogValue::Value(Value::Int(3)), ColumnKind::Integer),
                (BinlogValue::Value(Value::UInt(42)), ColumnKind::Integer),
                (BinlogValue::Value(Value::Date(2024, 2, 29, 23, 59, 58, 0)), ColumnKind::DateTime { offset: None }),
                (bytes("Re: your order 1234567"), ColumnKind::Text(Charset::Utf8)),
                (bytes("jane@example.com"), ColumnKind::Text(Charset::Utf8)),
                (bytes(ADDRESSES_JSON), ColumnKind::Json),
                (bytes(ORDER_JSON), ColumnKind::Json),
            ],
        ),
    ];
    println!("{:<48} {:>12}", "case", "ns/value");
    let mut out = Vec::with_capacity(4096);
    let mut total = 0usize;
    // A name given whole picks that case alone, a part of names those that contain it.
    let exact = cases.iter().any(|(name, _)| *name == only);
    for (name, values) in cases.iter().filter(|(name, _)| if exact { *name == only } else { name.contains(&only) }) {
        let mut times = Vec::with_capacity(runs);
        for _ in 0..runs {
            let started = Instant::now();
            total = total.wrapping_add(run(values, iterations, &mut out)?);
            times.push(started.elapsed().as_nanos() as f64 / iterations as f64);
        }
        times.sort_by(f64::total_cmp);
        println!("{name:<48} {:>12.1}", times[times.len() / 2]);
    }
    println!("({iterations} iterations, median of {runs} runs; {total} bytes written)");
    Ok(())
}

/// Converts and writes `values` `iterations` times; the bytes written.
#[inline(never)]
fn run(values: &[(BinlogValue<'static>, ColumnKind)], iterations: usize, out: &mut Vec<u8>) -> Result<usize, BoxError> {
    let mut total = 0usize;
    for _ in 0..iterations {
        out.clear();
        for (value, kind) in values {
            let json = to_json(black_box(value), kind);
            serde_json::to_writer(&mut *out, &json)?;
        }
        total = total.wrapping_add(black_box(out.len()));
    }
    Ok(total)
}
