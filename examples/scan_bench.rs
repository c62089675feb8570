//! `cargo run --release --example scan_bench [-- --size-mb 256 --runs 5]`
//!
//! Writes a plain-text log (JSON-ish request lines, a real token every ~1 MB, `mpt_` look-alikes
//! now and then) to a temp file, then times on one core, median of the runs, each over the
//! whole file from the page cache:
//! - `read`: reading the file in 1 MiB chunks, nothing else (the floor);
//! - `memmem`: the same plus counting `mpt_` with `memchr::memmem` (what any scanner pays);
//! - `scan_file`: `memberpass scan`'s path for one file (sniff, grammar, checksums, lines);
//! - `find_tokens`: the grammar alone over the file already in memory.
//!
//! The file is deleted at the end, also on a panic.

use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use memberpass::domain::token::{TokenEnv, TokenSecret};
use memberpass::scan::file::scan_file;
use memberpass::scan::find_tokens;

const CHUNK: usize = 1024 * 1024;

struct Args {
    size_mb: u64,
    runs: usize,
}

fn args() -> Args {
    let mut a = Args { size_mb: 256, runs: 5 };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--size-mb" => a.size_mb = value.parse().expect("--size-mb N"),
            "--runs" => a.runs = value.parse().expect("--runs N"),
            other => panic!("unknown flag {other}"),
        }
    }
    a
}

/// The log file, removed when dropped.
struct TempFile(PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Writes about `size` bytes of log lines; returns how many tokens it holds.
fn write_log(path: &Path, size: u64) -> std::io::Result<usize> {
    let mut out = BufWriter::with_capacity(CHUNK, File::create(path)?);
    let (mut written, mut tokens, mut n) = (0u64, 0usize, 0u64);
    let mut next_token_at = 0u64;
    while written < size {
        n += 1;
        let line = if written >= next_token_at {
            next_token_at += 1_000_000;
            tokens += 1;
            let t = TokenSecret::generate(TokenEnv::Live);
            format!(
                "{{\"ts\":\"2024-05-01T12:{:02}:{:02}.{:03}Z\",\"level\":\"debug\",\"msg\":\"tool call\",\"args\":\"{{\\\"Authorization\\\":\\\"Bearer {}\\\"}}\"}}\n",
                n / 60 % 60,
                n % 60,
                n % 1000,
                t.expose_secret()
            )
        } else if n % 997 == 0 {
            format!("{{\"level\":\"info\",\"msg\":\"token mpt_live_{n:012}_[REDACTED] used\",\"n\":{n}}}\n")
        } else {
            format!(
                "{{\"ts\":\"2024-05-01T12:{:02}:{:02}.{:03}Z\",\"level\":\"info\",\"method\":\"GET\",\"path\":\"/v1/projects/{:x}/members\",\"status\":200,\"latency_ms\":{},\"request_id\":\"{:016x}\"}}\n",
                n / 60 % 60,
                n % 60,
                n % 1000,
                n.wrapping_mul(2_654_435_761) % 100_000,
                n % 250,
                n.wrapping_mul(0x9E37_79B9_7F4A_7C15)
            )
        };
        out.write_all(line.as_bytes())?;
        written += line.len() as u64;
    }
    out.flush()?;
    Ok(tokens)
}

fn read_all(path: &Path, mut per_chunk: impl FnMut(&[u8])) -> u64 {
    let mut file = File::open(path).expect("open");
    let mut buf = vec![0u8; CHUNK];
    let mut total = 0;
    loop {
        let n = file.read(&mut buf).expect("read");
        if n == 0 {
            return total;
        }
        per_chunk(&buf[..n]);
        total += n as u64;
    }
}

/// The median of `runs` timings of `f`, which returns a count to check and keep.
fn median(runs: usize, mut f: impl FnMut() -> usize) -> (Duration, usize) {
    let mut times = Vec::with_capacity(runs);
    let mut count = 0;
    for _ in 0..runs {
        let start = Instant::now();
        count = std::hint::black_box(f());
        times.push(start.elapsed());
    }
    times.sort();
    (times[runs / 2], count)
}

fn main() {
    let args = args();
    let path = std::env::temp_dir().join(format!("memberpass-scan-bench-{}.log", std::process::id()));
    let file = TempFile(path.clone());
    let planted = write_log(&file.0, args.size_mb * 1_000_000).expect("write the log");
    let size = std::fs::metadata(&path).expect("stat").len();
    let mb = size as f64 / 1e6;
    println!(
        "scan_bench: {mb:.0} MB plain-text log, {planted} tokens, {} runs each, median, one core",
        args.runs
    );
    let report = |name: &str, (time, count): (Duration, usize)| {
        println!(
            "  {name:<12} {:>8.0} MB/s  ({:.3} s, count {count})",
            mb / time.as_secs_f64(),
            time.as_secs_f64()
        );
    };

    // Warm the page cache so every run reads from memory.
    read_all(&path, |_| {});
    report("read", median(args.runs, || read_all(&path, |_| {}) as usize));
    let finder = memchr::memmem::Finder::new("mpt_");
    report(
        "memmem",
        median(args.runs, || {
            let mut hits = 0;
            read_all(&path, |chunk| hits += finder.find_iter(chunk).count());
            hits
        }),
    );
    let scanned = median(args.runs, || scan_file(&path).expect("scan").found.len());
    assert_eq!(scanned.1, planted, "the scanner must find every planted token");
    report("scan_file", scanned);
    let whole = std::fs::read(&path).expect("read");
    let grammar = median(args.runs, || find_tokens(&whole).count());
    assert_eq!(grammar.1, planted);
    report("find_tokens", grammar);
}
