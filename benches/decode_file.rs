//! Catch-up decode without the network, for repeatable instruction counts.
//!
//! Every event of a binlog file read from disk goes through [`Decoder::feed`]
//! as the reader actor feeds it (mysql_common's `EventStreamReader`, which
//! mysql_async's binlog stream also uses, with its table maps), every event
//! body built. Nothing here depends on the server's speed or the machine's
//! load, so `valgrind --tool=callgrind` or `perf stat -e instructions` on it
//! compare two versions of the decoder exactly; `benches/rowhook.rs` is the
//! real stream. It prints the rows, events and a hash of every id and body, so
//! a change that alters the output shows.
//!
//! ```text
//! cargo bench --bench decode_file -- --port PORT --file DATADIR/binlog.000002 [--repeat N]
//! ```
//!
//! PORT: the server of `make bench`'s workload (database `bench_helpdesk`),
//! whose `information_schema` gives the tables' columns as the daemon loads
//! them; FILE: the helpdesk workload's binlog file in its data dir.

use std::collections::HashMap;
use std::hash::Hasher;
use std::io::{BufReader, Read};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use mysql_common::binlog::consts::BinlogVersion;
use mysql_common::binlog::EventStreamReader;
use rowhook::config::Config;
use rowhook::source::decoder::{Decoded, Decoder, Position};
use rowhook::events::envelope::events_of;
use rowhook::events::mapping::Mapper;
use rowhook::source::schema::{self, TableSchema};

type BoxError = Box<dyn std::error::Error>;

const DB: &str = "bench_helpdesk";

fn main() -> Result<(), BoxError> {
    let (mut port, mut file, mut repeat) = (0u16, None, 1usize);
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{a} needs a value"));
        match a.as_str() {
            "--port" => port = value()?.parse()?,
            "--file" => file = Some(PathBuf::from(value()?)),
            "--repeat" => repeat = value()?.parse()?,
            "--bench" => {} // added by `cargo bench`
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    let (Some(file), true) = (file, port != 0) else {
        eprintln!("decode_file: needs --port PORT --file BINLOG (see the module docs)");
        return Ok(());
    };
    let config_path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/rowhook.toml");
    let config = Config::from_toml(&std::fs::read_to_string(&config_path)?)?;
    let mapper = Arc::new(Mapper::new(&config.events));
    let names: Vec<String> = rowhook::source::decoder::RowMapper::tables(&*mapper);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let tables = rt.block_on(async {
        let mut conn = mysql_async::Conn::from_url(format!("mysql://root@127.0.0.1:{port}/{DB}")).await?;
        let tables = schema::load_tables(&mut conn, DB, &names, true).await?;
        conn.disconnect().await?;
        Ok::<_, BoxError>(tables)
    })?;
    let mut bytes = Vec::new();
    std::fs::File::open(&file)?.read_to_end(&mut bytes)?;
    let name = file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    for _ in 0..repeat {
        let started = Instant::now();
        let (rows, events, hash) = decode(&bytes, &name, &mapper, &tables)?;
        let elapsed = started.elapsed();
        println!(
            "{rows} rows, {events} events, bodies hash {hash:016x}, {:.3} s, {:.0} rows/s",
            elapsed.as_secs_f64(),
            rows as f64 / elapsed.as_secs_f64()
        );
    }
    Ok(())
}

/// Feeds every event of the file to a new decoder: (rows, events, hash of ids and bodies).
fn decode(bytes: &[u8], name: &str, mapper: &Arc<Mapper>, tables: &HashMap<String, TableSchema>) -> Result<(usize, usize, u64), BoxError> {
    let mut input = BufReader::new(bytes);
    let mut magic = [0u8; 4];
    input.read_exact(&mut magic)?;
    if &magic != b"\xfebin" {
        return Err("not a binlog file".into());
    }
    let mut decoder = Decoder::new(mapper.clone(), DB, tables.clone(), Position { file: name.to_string(), pos: 4 });
    let mut reader = EventStreamReader::new(BinlogVersion::Version4);
    let (mut rows, mut events) = (0, 0);
    let mut hash = std::collections::hash_map::DefaultHasher::new();
    loop {
        let event = match reader.read(&mut input) {
            Ok(Some(event)) => event,
            Ok(None) => break,
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
            Err(e) => return Err(e.into()),
        };
        if let Decoded::Commit(t) | Decoded::Partial(t) = decoder.feed(&event, |id| reader.get_tme(id))? {
            // Decoding and the events stage, as the reader and the router run them.
            let mapped = events_of(&t, 0);
            rows += t.rows_by_table.iter().map(|(_, _, n)| n).sum::<usize>();
            events += mapped.len();
            for e in &mapped {
                hash.write(e.id.as_bytes());
                hash.write(e.body.as_bytes());
            }
        }
    }
    Ok((rows, events, hash.finish()))
}
