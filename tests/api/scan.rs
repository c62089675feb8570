//! `memberpass scan`, as the real binary over a real directory: every place a token leaks to
//! (a log, an ignored hidden `.env`, UTF-16, gzip, a JSON export), the places it must not look
//! (binary data, symlinks), `--json`, exit codes, `--redact` byte for byte, `--revoke` against
//! the real server, and never a secret in the output.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread;
use std::time::Duration;

use flate2::Compression;
use flate2::read::MultiGzDecoder;
use flate2::write::GzEncoder;
use memberpass::domain::ability::Ability;
use memberpass::domain::token::{TokenEnv, TokenSecret};
use serde_json::Value;

use crate::helpers::{OWNER_A, spawn_app};

/// A directory removed when the test ends.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(format!("memberpass-scan-{}", uuid::Uuid::now_v7().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn path(&self) -> &Path {
        &self.0
    }

    fn write(&self, rel: &str, bytes: impl AsRef<[u8]>) -> PathBuf {
        let path = self.0.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, bytes).unwrap();
        path
    }

    fn read(&self, rel: &str) -> Vec<u8> {
        std::fs::read(self.0.join(rel)).unwrap()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn token() -> TokenSecret {
    TokenSecret::generate(TokenEnv::Test)
}

/// What `--redact` leaves of a token: its ID and a marker padded to the token's length.
fn redacted(t: &TokenSecret) -> String {
    format!("mpt_test_{}_[REDACTED]{}", t.id(), "X".repeat(28))
}

/// A token with the right shape and a checksum that is not its own.
fn bad_checksum(t: &TokenSecret) -> String {
    let s = t.expose_secret();
    let last = if s.ends_with('a') { 'b' } else { 'a' };
    format!("{}{last}", &s[..s.len() - 1])
}

fn utf16le_with_bom(text: &str) -> Vec<u8> {
    let mut out = vec![0xFF, 0xFE];
    out.extend(text.encode_utf16().flat_map(u16::to_le_bytes));
    out
}

fn gzip(text: &str) -> Vec<u8> {
    let mut enc = GzEncoder::new(Vec::new(), Compression::default());
    enc.write_all(text.as_bytes()).unwrap();
    enc.finish().unwrap()
}

fn gunzip(bytes: &[u8]) -> String {
    let mut out = String::new();
    MultiGzDecoder::new(bytes).read_to_string(&mut out).unwrap();
    out
}

/// Random bytes with NULs at both parities (as any binary has), a token in the middle.
fn binary_with(t: &TokenSecret) -> Vec<u8> {
    let mut noise = vec![0u8; 2048];
    getrandom::fill(&mut noise).unwrap();
    noise[..8].copy_from_slice(&[0, 0, 7, 0, 0, 9, 0, 0]);
    [&noise[..1024], b" ", t.expose_secret().as_bytes(), b" ", &noise[1024..]].concat()
}

/// A file or directory tree holding leaks in every form `scan` reads, and some it must not.
struct Corpus {
    dir: TempDir,
    /// Where the symlinks point: outside the scanned tree.
    outside: TempDir,
    /// `(file relative to dir, line, token)` for every leak `scan` must report.
    leaks: Vec<(&'static str, u64, TokenSecret)>,
    /// Every token written anywhere, reported or not.
    all: Vec<TokenSecret>,
    /// Each file's expected text after `--redact`.
    app_log_redacted: String,
    env_redacted: String,
    utf16_redacted: Vec<u8>,
    gz_redacted: String,
    export_redacted: String,
}

const APP_LOG: &str = "logs/app.log";
const DOT_ENV: &str = "secrets/.env";
const UTF16: &str = "transcripts/session-utf16.txt";
const GZ: &str = "logs/old.log.1.gz";
const EXPORT: &str = "export/conversations.json";
const BLOB: &str = "cache/blob.bin";

fn corpus() -> Corpus {
    let (dir, outside) = (TempDir::new(), TempDir::new());
    let [t1, t2, t3, t4, t5, t6, t7, t8, t9] = std::array::from_fn(|_| token());

    let app_log = |a: &str, b: &str| {
        format!(
            "2024-05-01 start\r\nINFO key={a}\r\nINFO again ({a}) and {b}\r\nWARN x{} {} {}_tail\r\n",
            t3.expose_secret(),
            bad_checksum(&t4),
            redacted(&t3)
        )
    };
    let app_log_path = dir.write(APP_LOG, app_log(t1.expose_secret(), t2.expose_secret()));
    set_mode(&app_log_path, 0o600);

    dir.write(".gitignore", "secrets/\n*.env\n");
    let env = |t: &str| format!("# local settings\nMEMBERPASS_TOKEN={t}\nOTHER=1\n");
    dir.write(DOT_ENV, env(t5.expose_secret()));

    let utf16 = |t: &str| utf16le_with_bom(&format!("User: caf\u{e9} \u{4E2D}\u{6587}\r\nAssistant: use {t}\r\n"));
    dir.write(UTF16, utf16(t6.expose_secret()));

    let gz = |t: &str| format!("a\nb\nAuthorization: Bearer {t}\n");
    dir.write(GZ, gzip(&gz(t7.expose_secret())));

    let export = |t: &str| {
        serde_json::json!({"title": "setup", "messages": [{"role": "user", "text": format!("here it is:\n{t}")}]})
            .to_string()
    };
    let export_text = export(t8.expose_secret());
    assert!(export_text.contains(&format!("\\n{}", t8.expose_secret())));
    dir.write(EXPORT, &export_text);

    dir.write(BLOB, binary_with(&t9));
    let target = outside.write("target.log", format!("leak {}\n", t9.expose_secret()));
    link(&target, &dir.path().join("logs/link.log"));
    link(outside.path(), &dir.path().join("linked-dir"));

    Corpus {
        app_log_redacted: app_log(&redacted(&t1), &redacted(&t2)),
        env_redacted: env(&redacted(&t5)),
        utf16_redacted: utf16(&redacted(&t6)),
        gz_redacted: gz(&redacted(&t7)),
        export_redacted: export(&redacted(&t8)),
        leaks: vec![
            (APP_LOG, 2, t1.clone()),
            (APP_LOG, 3, t1.clone()),
            (APP_LOG, 3, t2.clone()),
            (DOT_ENV, 2, t5.clone()),
            (UTF16, 2, t6.clone()),
            (GZ, 3, t7.clone()),
            (EXPORT, 1, t8.clone()),
        ],
        all: vec![t1, t2, t3, t4, t5, t6, t7, t8, t9],
        dir,
        outside,
    }
}

#[cfg(unix)]
fn link(target: &Path, at: &Path) {
    std::os::unix::fs::symlink(target, at).unwrap();
}

#[cfg(unix)]
fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

fn scan(args: &[&str], home: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_memberpass"))
        .arg("scan")
        .args(args)
        .env("HOME", home)
        .env("MEMBERPASS_LOG", "warn")
        .output()
        .expect("binary runs")
}

fn json_of(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("no JSON document ({e}): {}", String::from_utf8_lossy(&out.stdout)))
}

/// No token's secret part (nor the whole token) in what the command printed.
fn assert_no_secret(out: &Output, tokens: &[TokenSecret]) {
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    for t in tokens {
        let secret_part = &t.expose_secret()[22..];
        assert!(!printed.contains(secret_part), "a secret was printed:\n{printed}");
    }
}

fn findings_of(doc: &Value, root: &Path) -> BTreeSet<(String, u64, String, String)> {
    doc["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .map(|f| {
            let path = Path::new(f["path"].as_str().unwrap());
            (
                path.strip_prefix(root).unwrap().display().to_string(),
                f["line"].as_u64().unwrap(),
                f["token_id"].as_str().unwrap().to_owned(),
                f["env"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn expected_findings(c: &Corpus) -> BTreeSet<(String, u64, String, String)> {
    c.leaks
        .iter()
        .map(|(file, line, t)| (file.to_string(), *line, t.id().to_string(), "test".to_owned()))
        .collect()
}

#[test]
fn scan_reports_every_leak_by_file_line_and_id_and_nothing_else() {
    let c = corpus();
    let root = c.dir.path().to_str().unwrap();

    let out = scan(&["--json", root], c.outside.path());

    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    let doc = json_of(&out);
    assert_eq!(findings_of(&doc, c.dir.path()), expected_findings(&c));
    assert_eq!(doc["findings"].as_array().unwrap().len(), c.leaks.len());
    // app.log, .gitignore, .env, UTF-16, gzip, export; the binary is skipped, symlinks not followed.
    assert_eq!(doc["files_scanned"], 6);
    assert_eq!(doc["binary_files_skipped"], 1);
    assert!(doc["bytes_scanned"].as_u64().unwrap() > 300);
    assert_no_secret(&out, &c.all);
}

#[test]
fn the_human_report_names_file_line_and_token_id_only() {
    let c = corpus();

    let out = scan(&[c.dir.path().to_str().unwrap()], c.outside.path());

    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    for (file, line, t) in &c.leaks {
        let expected = format!(
            "{}:{line}: token mpt_test_{} (",
            c.dir.path().join(file).display(),
            t.id()
        );
        assert!(stdout.contains(&expected), "{expected} missing in:\n{stdout}");
    }
    assert_eq!(stdout.lines().count(), c.leaks.len(), "{stdout}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("7 tokens found in 5 files"));
    assert_no_secret(&out, &c.all);
}

#[test]
fn exit_codes_say_found_nothing_found_or_cannot_run_and_no_database_is_opened() {
    let dir = TempDir::new();
    dir.write("clean.log", "nothing to see\nmpt_test_ but not a token\n");
    let data_dir = dir.path().join("never-created");
    let data_dir = data_dir.to_str().unwrap();

    let clean = scan(&["--data-dir", data_dir, dir.path().to_str().unwrap()], dir.path());
    assert_eq!(
        clean.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&clean.stderr)
    );
    assert!(String::from_utf8_lossy(&clean.stderr).contains("no tokens found"));
    assert!(!Path::new(data_dir).exists(), "scan must not open a database");

    for args in [
        vec![dir.path().join("no-such-file").to_str().unwrap().to_owned()],
        vec![
            "--revoke".into(),
            "not a url".into(),
            dir.path().to_str().unwrap().to_owned(),
        ],
        vec!["--no-such-flag".into()],
    ] {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = scan(&args, dir.path());
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn with_no_path_it_scans_the_ai_client_places_under_home() {
    let home = TempDir::new();
    let [a, b, c, d] = std::array::from_fn(|_| token());
    home.write(
        ".claude/projects/demo/session.jsonl",
        format!("{{\"text\":\"{}\"}}\n", a.expose_secret()),
    );
    home.write(
        ".bash_history",
        format!("ls\nexport MEMBERPASS_TOKEN={}\n", b.expose_secret()),
    );
    home.write(
        "Downloads/ChatGPT-export/conversations.json",
        format!("[\"\\n{}\"]", c.expose_secret()),
    );
    home.write("Downloads/unrelated.txt", d.expose_secret());

    let out = scan(&["--json"], home.path());

    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    let found: BTreeSet<(String, u64, String, String)> = findings_of(&json_of(&out), home.path());
    let expected: BTreeSet<_> = [
        (".claude/projects/demo/session.jsonl", 1, &a),
        (".bash_history", 2, &b),
        ("Downloads/ChatGPT-export/conversations.json", 1, &c),
    ]
    .into_iter()
    .map(|(f, l, t)| (f.to_owned(), l, t.id().to_string(), "test".to_owned()))
    .collect();
    assert_eq!(found, expected);
    assert_no_secret(&out, &[a, b, c, d]);
}

#[test]
fn redact_replaces_only_the_tokens_keeping_encodings_modes_and_every_other_byte() {
    let c = corpus();
    let root = c.dir.path().to_str().unwrap();
    let blob_before = c.dir.read(BLOB);
    let target_before = c.outside.read("target.log");

    let out = scan(&["--json", "--redact", root], c.outside.path());

    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    assert_no_secret(&out, &c.all);
    let doc = json_of(&out);
    let redacted_tokens: u64 = doc["redacted"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["tokens"].as_u64().unwrap())
        .sum();
    assert_eq!(redacted_tokens, 7, "{doc}");

    assert_eq!(String::from_utf8(c.dir.read(APP_LOG)).unwrap(), c.app_log_redacted);
    assert_eq!(String::from_utf8(c.dir.read(DOT_ENV)).unwrap(), c.env_redacted);
    assert_eq!(c.dir.read(UTF16), c.utf16_redacted, "UTF-16LE with its BOM");
    let gz = c.dir.read(GZ);
    assert_eq!(&gz[..2], b"\x1F\x8B", "still gzip");
    assert_eq!(gunzip(&gz), c.gz_redacted);
    assert_eq!(String::from_utf8(c.dir.read(EXPORT)).unwrap(), c.export_redacted);
    assert_eq!(c.dir.read(BLOB), blob_before, "binary files are not rewritten");
    assert_eq!(c.outside.read("target.log"), target_before, "symlinks are not followed");
    assert!(c.dir.path().join("logs/link.log").is_symlink());
    #[cfg(unix)]
    assert_eq!(mode(&c.dir.path().join(APP_LOG)), 0o600);
    let leftovers: Vec<_> = walk_names(c.dir.path())
        .into_iter()
        .filter(|n| n.contains("memberpass-redact"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    let again = scan(&[root], c.outside.path());
    assert_eq!(
        again.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&again.stdout)
    );
}

fn walk_names(dir: &Path) -> Vec<String> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        names.push(entry.file_name().to_string_lossy().into_owned());
        if entry.file_type().unwrap().is_dir() {
            names.extend(walk_names(&entry.path()));
        }
    }
    names
}

/// A file's text in one of the encodings `scan` reads.
#[derive(Clone, Copy, Debug)]
enum Form {
    Plain,
    Utf16LeBom,
    Utf16BeBom,
    Utf16LeNoBom,
    Gzip,
    GzipUtf16Le,
}

impl Form {
    const ALL: [Form; 6] = [
        Form::Plain,
        Form::Utf16LeBom,
        Form::Utf16BeBom,
        Form::Utf16LeNoBom,
        Form::Gzip,
        Form::GzipUtf16Le,
    ];

    fn encode(self, text: &str) -> Vec<u8> {
        let le = || text.encode_utf16().flat_map(u16::to_le_bytes).collect::<Vec<u8>>();
        match self {
            Form::Plain => text.as_bytes().to_vec(),
            Form::Utf16LeBom => utf16le_with_bom(text),
            Form::Utf16BeBom => [
                &b"\xFE\xFF"[..],
                &text.encode_utf16().flat_map(u16::to_be_bytes).collect::<Vec<u8>>(),
            ]
            .concat(),
            Form::Utf16LeNoBom => le(),
            Form::Gzip => gzip(text),
            Form::GzipUtf16Le => {
                let mut enc = GzEncoder::new(Vec::new(), Compression::fast());
                enc.write_all(&utf16le_with_bom(text)).unwrap();
                enc.finish().unwrap()
            }
        }
    }
}

/// Strings that look like tokens and are not: each is refused by the grammar or the checksum.
fn look_alikes(t: &TokenSecret) -> Vec<String> {
    use memberpass::domain::token::checksum;
    let s = t.expose_secret();
    let body = &s[..s.len() - 6];
    let prod_body = body.replacen("mpt_test_", "mpt_prod_", 1);
    let short_body = format!("{}{}", &body[..20], &body[21..]);
    vec![
        bad_checksum(t),
        format!("{prod_body}{}", checksum(&prod_body)),
        format!("{short_body}{}", checksum(&short_body)),
        // Another CRC: the right algorithm over the wrong bytes.
        format!("{body}{}", checksum(&body[4..])),
        format!("x{s}"),
        format!("_{s}"),
        format!("{s}9"),
        format!("\\x{s}"),
        format!("%3E{s}"),
    ]
}

#[test]
fn precision_and_recall_are_total_on_a_generated_corpus_in_every_encoding() {
    let dir = TempDir::new();
    let contexts = [
        "{}",
        "KEY={}",
        "\"Bearer {}\"",
        "{{\"text\":\"\\n{}\\r\\n\"}}",
        "cb?token%3D{}&x",
        "({}).",
        "\\t{}",
    ];
    let mut expected = BTreeSet::new();
    let mut all = Vec::new();
    for (n, form) in Form::ALL.into_iter().enumerate() {
        let mut text = format!("header of a {form:?} file\r\n");
        let mut line = 2;
        for context in contexts {
            let (t, decoy) = (token(), token());
            for fake in look_alikes(&decoy) {
                text.push_str(&format!("noise {fake} noise\r\n"));
                line += 1;
            }
            text.push_str(
                &context
                    .replace("{}", t.expose_secret())
                    .replace("{{", "{")
                    .replace("}}", "}"),
            );
            text.push('\n');
            expected.insert((format!("f{n}.txt"), line, t.id().to_string(), "test".to_owned()));
            line += 1;
            all.extend([t, decoy]);
        }
        dir.write(&format!("f{n}.txt"), form.encode(&text));
    }

    let out = scan(&["--json", dir.path().to_str().unwrap()], dir.path());

    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    let doc = json_of(&out);
    assert_eq!(findings_of(&doc, dir.path()), expected);
    assert_eq!(doc["files_scanned"], Form::ALL.len());
    assert_no_secret(&out, &all);
}

#[tokio::test]
async fn revoke_hands_each_token_to_the_server_which_then_refuses_it() {
    let app = spawn_app().await;
    let w = app.world().await;
    let leaked = app.mint(OWNER_A, &w.team_a, &[Ability::ProjectViewAny], &[]).await;
    assert_eq!(app.get("/v1/me", &leaked).await.status.as_u16(), 200);
    let dir = TempDir::new();
    dir.write("notes/session.log", format!("started\npaste: {leaked}\n"));
    let id = crate::helpers::token_id(&leaked);

    let args: Vec<String> = vec![
        "scan".into(),
        "--revoke".into(),
        app.base.clone(),
        dir.path().to_str().unwrap().into(),
    ];
    let out = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_memberpass"))
            .args(&args)
            .env("MEMBERPASS_LOG", "warn")
            .output()
            .expect("binary runs")
    })
    .await
    .unwrap();

    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(&format!("revoke mpt_test_{id}: server answered 202")),
        "{stdout}"
    );
    assert!(!stdout.contains(&leaked[22..]) && !String::from_utf8_lossy(&out.stderr).contains(&leaked[22..]));
    assert_eq!(app.get("/v1/me", &leaked).await.status.as_u16(), 401);
}

// Issue 17, findings 5–10: an active log, a directory swapped during the run, proxies, gzip
// with trailing bytes, a symlinked root named with a trailing slash, control characters in names.

/// Bytes of the active log the redaction tests write to (big enough that reading it takes a
/// while, so the writer's lines land while `--redact` works on it).
const ACTIVE_LOG_BYTES: usize = 48 << 20;

/// A thread appending numbered lines to a file, about one a millisecond, until stopped.
struct Appender {
    stop: Arc<AtomicBool>,
    thread: thread::JoinHandle<usize>,
}

impl Appender {
    /// `reopen`: opens the file for each line (a logger that closes it in between); otherwise
    /// one handle opened with `O_APPEND` is kept for the whole run.
    fn start(path: PathBuf, reopen: bool) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = thread::spawn(move || {
            let open = || std::fs::OpenOptions::new().append(true).open(&path).unwrap();
            let mut held = (!reopen).then(open);
            let mut lines = 0;
            while !stopped.load(Ordering::Relaxed) {
                let line = format!("writer line {lines:06}\n");
                match &mut held {
                    Some(file) => file.write_all(line.as_bytes()).unwrap(),
                    None => open().write_all(line.as_bytes()).unwrap(),
                }
                lines += 1;
                thread::sleep(Duration::from_millis(1));
            }
            lines
        });
        Appender { stop, thread }
    }

    /// Stops it; how many lines it wrote.
    fn stop(self) -> usize {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap()
    }
}

/// `--redact` on a log another process appends to while it runs: every line appended before,
/// during and after is in the file, in order, and no clear token is left.
fn redact_keeps_every_line_of_an_active_log(reopen: bool) {
    let dir = TempDir::new();
    let (a, b) = (token(), token());
    let filler =
        "2024-05-01 12:00:00 INFO request served in 3 ms, nothing to see here\n".repeat(ACTIVE_LOG_BYTES / 2 / 70);
    let initial = format!(
        "start {}\n{filler}middle {}\n{filler}",
        a.expose_secret(),
        b.expose_secret()
    );
    let path = dir.write("active.log", &initial);
    let appender = Appender::start(path.clone(), reopen);
    thread::sleep(Duration::from_millis(20));

    let out = scan(&["--redact", dir.path().to_str().unwrap()], dir.path());

    thread::sleep(Duration::from_millis(50));
    let lines = appender.stop();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let text = String::from_utf8(std::fs::read(&path).unwrap()).unwrap();
    for t in [&a, &b] {
        assert!(!text.contains(t.expose_secret()), "a clear token is left: {stderr}");
    }
    assert!(text.starts_with(&format!("start {}\n", redacted(&a))), "{stderr}");
    assert!(text.contains(&format!("\nmiddle {}\n", redacted(&b))), "{stderr}");
    let appended = text.get(initial.len()..).unwrap_or_default();
    let expected: String = (0..lines).map(|n| format!("writer line {n:06}\n")).collect();
    assert!(
        appended == expected,
        "{} of the {lines} lines appended are in the file ({stderr})",
        appended.lines().count()
    );
    assert!(lines > 50, "the writer ran for only {lines} lines");
}

#[test]
fn redact_keeps_every_line_a_writer_holding_the_log_open_appends() {
    redact_keeps_every_line_of_an_active_log(false);
}

#[test]
fn redact_keeps_every_line_a_writer_reopening_the_log_per_line_appends() {
    redact_keeps_every_line_of_an_active_log(true);
}

/// A loopback HTTP server (or proxy: it reads both forms of request line the same way) that
/// answers every request with `status`, counting the requests; `on_first` runs before the
/// first answer.
struct Stub {
    url: String,
    requests: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Stub {
    fn start(status: &'static str, on_first: impl FnOnce() + Send + 'static) -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (requests, stop) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicBool::new(false)));
        let (counted, stopped) = (requests.clone(), stop.clone());
        let thread = thread::spawn(move || {
            let mut on_first = Some(on_first);
            while !stopped.load(Ordering::Relaxed) {
                let Ok((mut stream, _)) = listener.accept() else {
                    thread::sleep(Duration::from_millis(5));
                    continue;
                };
                stream.set_nonblocking(false).unwrap();
                stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                if read_request(&mut stream).is_none() {
                    continue;
                }
                counted.fetch_add(1, Ordering::SeqCst);
                if let Some(f) = on_first.take() {
                    f();
                }
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                );
            }
        });
        Stub {
            url,
            requests,
            stop,
            thread: Some(thread),
        }
    }

    fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

impl Drop for Stub {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Reads one HTTP/1.1 request (head and `content-length` body); `None` if the peer left.
fn read_request(stream: &mut std::net::TcpStream) -> Option<Vec<u8>> {
    let mut bytes = Vec::new();
    let mut buf = [0u8; 4096];
    let head_end = loop {
        if let Some(at) = bytes.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return None,
            Ok(n) => bytes.extend_from_slice(&buf[..n]),
        }
    };
    let head = String::from_utf8_lossy(&bytes[..head_end]).to_ascii_lowercase();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .map_or(0, |v| v.trim().parse().unwrap_or(0));
    while bytes.len() < head_end + length {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return None,
            Ok(n) => bytes.extend_from_slice(&buf[..n]),
        }
    }
    Some(bytes)
}

#[test]
fn redact_never_writes_through_a_directory_or_file_swapped_for_a_symlink_after_the_walk() {
    let base = TempDir::new();
    let [inside1, inside2, outside1, outside2] = std::array::from_fn(|_| token());
    base.write("t4/sub/creds.txt", format!("KEY={}\n", inside1.expose_secret()));
    base.write("t4/sub2/creds.txt", format!("KEY={}\n", inside2.expose_secret()));
    let outside_files = [
        base.write("outside2/creds.txt", format!("KEY={}\n", outside1.expose_secret())),
        base.write("outside3/creds.txt", format!("KEY={}\n", outside2.expose_secret())),
    ];
    let outside_before: Vec<Vec<u8>> = outside_files.iter().map(|f| std::fs::read(f).unwrap()).collect();
    let t4 = base.path().join("t4");
    // While the scan waits for the server's answer, a directory of the tree becomes a symlink
    // leading out of it, and a file becomes a symlink to a file outside.
    let swap_in = t4.clone();
    let server = Stub::start("202 Accepted", move || {
        std::fs::rename(swap_in.join("sub"), swap_in.join("sub.moved")).unwrap();
        link(Path::new("../outside2"), &swap_in.join("sub"));
        std::fs::rename(swap_in.join("sub2/creds.txt"), swap_in.join("sub2/creds.moved")).unwrap();
        link(Path::new("../../outside3/creds.txt"), &swap_in.join("sub2/creds.txt"));
    });

    let out = scan(
        &["--revoke", &server.url, "--redact", t4.to_str().unwrap()],
        base.path(),
    );

    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert_eq!(server.requests(), 2, "{stdout}{stderr}");
    for (file, before) in outside_files.iter().zip(&outside_before) {
        assert_eq!(&std::fs::read(file).unwrap(), before, "{stdout}{stderr}");
    }
    assert!(!stdout.contains("redacted"), "{stdout}");
    for file in ["sub/creds.txt", "sub2/creds.txt"] {
        let warning = format!("warning: {}: not redacted", t4.join(file).display());
        assert!(stderr.contains(&warning), "{warning} missing in:\n{stderr}");
    }
    // The moved files are skipped, not rewritten: a rescan finds them.
    assert!(
        String::from_utf8_lossy(&std::fs::read(t4.join("sub.moved/creds.txt")).unwrap())
            .contains(inside1.expose_secret())
    );
    assert!(
        String::from_utf8_lossy(&std::fs::read(t4.join("sub2/creds.moved")).unwrap()).contains(inside2.expose_secret())
    );
    assert_no_secret(&out, &[inside1, inside2, outside1, outside2]);
}

#[tokio::test]
async fn revoke_ignores_proxy_variables_unless_use_proxy_is_given() {
    let app = spawn_app().await;
    let w = app.world().await;
    let leaked = app.mint(OWNER_A, &w.team_a, &[Ability::ProjectViewAny], &[]).await;
    let id = crate::helpers::token_id(&leaked);
    let dir = TempDir::new();
    dir.write("session.log", format!("paste: {leaked}\n"));
    let proxy = Stub::start("202 Accepted", || {});
    let run = |extra: &'static [&'static str]| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_memberpass"));
        command
            .arg("scan")
            .args(extra)
            .args(["--revoke", &app.base, dir.path().to_str().unwrap()])
            .env("MEMBERPASS_LOG", "warn")
            .env_remove("NO_PROXY")
            .env_remove("no_proxy");
        for var in [
            "http_proxy",
            "HTTP_PROXY",
            "https_proxy",
            "HTTPS_PROXY",
            "all_proxy",
            "ALL_PROXY",
        ] {
            command.env(var, &proxy.url);
        }
        tokio::task::spawn_blocking(move || command.output().expect("binary runs"))
    };

    let out = run(&[]).await.unwrap();

    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(proxy.requests(), 0, "the token went to the proxy: {stdout}");
    assert!(
        stdout.contains(&format!("revoke mpt_test_{id}: server answered 202")),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(app.get("/v1/me", &leaked).await.status.as_u16(), 401);

    let through_proxy = run(&["--use-proxy"]).await.unwrap();
    assert_eq!(
        proxy.requests(),
        1,
        "{}",
        String::from_utf8_lossy(&through_proxy.stderr)
    );
}

#[test]
fn a_gzip_file_with_trailing_bytes_is_scanned_and_redacted_up_to_them() {
    let dir = TempDir::new();
    let t = token();
    let text = |t: &str| format!("a\nb {t}\n");
    dir.write(
        "old.log.gz",
        [gzip(&text(t.expose_secret())), b"GARBAGE".to_vec()].concat(),
    );
    let root = dir.path().to_str().unwrap();

    let out = scan(&["--json", "--redact", root], dir.path());

    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let doc = json_of(&out);
    let expected = BTreeSet::from([("old.log.gz".to_owned(), 2, t.id().to_string(), "test".to_owned())]);
    assert_eq!(findings_of(&doc, dir.path()), expected, "{stderr}");
    assert!(stderr.contains("old.log.gz"), "a warning names the file: {stderr}");
    assert_eq!(doc["redacted"][0]["tokens"], 1, "{doc}");
    let after = dir.read("old.log.gz");
    let (gz, trailing) = after.split_at(after.len() - b"GARBAGE".len());
    assert_eq!(trailing, b"GARBAGE", "the trailing bytes are kept");
    assert_eq!(gunzip(gz), text(&redacted(&t)));
    assert_no_secret(&out, &[t]);
}

#[test]
fn a_symlinked_root_is_refused_with_or_without_a_trailing_slash() {
    let (dir, outside) = (TempDir::new(), TempDir::new());
    let t = token();
    outside.write("creds.txt", format!("KEY={}\n", t.expose_secret()));
    let at = dir.path().join("link_dir");
    link(outside.path(), &at);
    let at = at.to_str().unwrap();

    for named in [at.to_owned(), format!("{at}/"), format!("{at}//"), format!("{at}/.")] {
        let out = scan(&["--json", &named], dir.path());

        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{named}: {stderr}");
        assert_eq!(json_of(&out)["files_scanned"], 0, "{named}");
        assert!(stderr.contains("a symlink (not followed)"), "{named}: {stderr}");
    }
}

#[test]
fn control_characters_in_file_names_are_escaped_in_the_human_report() {
    let dir = TempDir::new();
    let t = token();
    let forged = format!(
        "x\nFORGED.log:9: token mpt_test_{} (secret not shown)\n\x1b[1A\x1b[2K\u{202E}gol.txt",
        "A".repeat(12)
    );
    dir.write(&forged, format!("KEY={}\n", t.expose_secret()));

    let out = scan(&["--redact", dir.path().to_str().unwrap()], dir.path());

    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    // One finding line and one redaction line, and nothing a terminal would act on.
    assert_eq!(stdout.lines().count(), 2, "{stdout}");
    for printed in [&stdout, &stderr] {
        assert!(
            !printed
                .chars()
                .any(|c| (c.is_control() && c != '\n') || c == '\u{202E}'),
            "{printed:?}"
        );
    }
    assert!(stdout.contains("x\\nFORGED.log:9:"), "{stdout}");
    assert!(stdout.starts_with(&dir.path().display().to_string()), "{stdout}");
    assert!(stdout.contains(&format!(":1: token mpt_test_{} (", t.id())), "{stdout}");
    assert_no_secret(&out, &[t]);
}

#[test]
fn redact_replaces_a_read_only_file_it_cannot_edit_in_place_keeping_its_mode() {
    let dir = TempDir::new();
    let t = token();
    let path = dir.write("notes.txt", format!("KEY={}\n", t.expose_secret()));
    set_mode(&path, 0o444);

    let out = scan(&["--redact", dir.path().to_str().unwrap()], dir.path());

    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(
        String::from_utf8(dir.read("notes.txt")).unwrap(),
        format!("KEY={}\n", redacted(&t))
    );
    assert_eq!(mode(&path), 0o444);
}
