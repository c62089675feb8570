//! The rules for other scanners in `docs/secret-scanning/` (gitleaks, trufflehog, a GitHub custom
//! pattern), run over a corpus generated here: every real token in every context where it is a
//! token, none of the look-alikes the expressions can tell apart.
//!
//! gitleaks and trufflehog are Go programs whose binaries come only from GitHub releases, which
//! this machine cannot reach (no registry it can reach carries them); both match with Go's RE2
//! `regexp`, whose syntax and leftmost-first semantics the `regex` crate shares, so the test
//! runs their expressions, as written in the files, through it.

use std::collections::BTreeSet;

use memberpass::domain::token::{TokenEnv, TokenSecret};
use regex::Regex;

fn doc(name: &str) -> String {
    std::fs::read_to_string(format!("{}/docs/secret-scanning/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

/// The expression between the first `open` and the next `close` after it.
fn between(text: &str, open: &str, close: &str) -> String {
    let from = text.find(open).unwrap_or_else(|| panic!("no {open}")) + open.len();
    let to = text[from..].find(close).unwrap() + from;
    text[from..to].to_owned()
}

fn rules() -> Vec<(&'static str, Regex)> {
    let gitleaks = between(&doc("gitleaks.toml"), "regex = '''", "'''");
    let trufflehog = between(&doc("trufflehog.yaml"), "token: '", "'\n");
    let github: serde_json::Value = serde_json::from_str(&doc("github-custom-pattern.json")).unwrap();
    let github = format!(
        "(?:{})({})(?:{})",
        github["before_secret"].as_str().unwrap(),
        github["secret_format"].as_str().unwrap(),
        github["after_secret"].as_str().unwrap()
    );
    vec![
        ("gitleaks", Regex::new(&gitleaks).unwrap()),
        ("trufflehog", Regex::new(&trufflehog).unwrap()),
        ("github", Regex::new(&github).unwrap()),
    ]
}

fn found(rule: &Regex, text: &str) -> BTreeSet<String> {
    rule.captures_iter(text).map(|c| c[1].to_owned()).collect()
}

fn token(env: TokenEnv) -> String {
    TokenSecret::generate(env).expose_secret().to_owned()
}

/// A token whose last character is changed: the right shape, a wrong checksum.
fn bad_checksum(t: &str) -> String {
    let last = if t.ends_with('a') { 'b' } else { 'a' };
    format!("{}{last}", &t[..t.len() - 1])
}

#[test]
fn the_rules_find_every_token_in_every_context_and_no_look_alike_they_can_express() {
    let rules = rules();
    for _ in 0..50 {
        let live = token(TokenEnv::Live);
        let test = token(TokenEnv::Test);
        // Where a token is a token: each line holds exactly `t`.
        let t = &test;
        let positives = [
            t.clone(),
            format!("MEMBERPASS_TOKEN={t}"),
            format!("export MEMBERPASS_TOKEN=\"{t}\""),
            format!("Authorization: Bearer {t}"),
            format!("{{\"env\": {{\"AUTH_TOKEN\": \"Bearer {t}\"}}}}"),
            format!("{{\"text\": \"here is my token:\\n{t}\"}}"),
            format!("{{\"text\": \"\\t{t}\\r\\n\"}}"),
            format!("https://example.test/cb?token%3D{t}&next=1"),
            format!("https://example.test/cb?token%3d{t}"),
            format!("curl -H 'Authorization: Bearer {t}' https://x"),
            format!("({t})"),
            format!("token: {t}."),
        ];
        // Look-alikes an expression can tell apart from a token.
        let mut id_short = t.clone();
        id_short.remove(10);
        let negatives = [
            format!("x{t}"),
            format!("7{t}"),
            format!("_{t}"),
            format!("{t}Z"),
            format!("{t}0"),
            t.replacen("mpt_test_", "mpt_prod_", 1),
            t.replacen("mpt_test_", "MPT_test_", 1),
            t.replacen("mpt_test_", "mpt_test-", 1),
            id_short,
            t[..t.len() - 1].to_owned(),
            format!("\\x{t}"),
            format!("%3E{t}"),
        ];
        for (name, rule) in &rules {
            for line in &positives {
                assert_eq!(
                    found(rule, line),
                    BTreeSet::from([t.clone()]),
                    "{name} must find the token in {line:?}"
                );
            }
            for line in &negatives {
                assert!(found(rule, line).is_empty(), "{name} must not flag {line:?}");
            }
            assert_eq!(
                found(rule, &live),
                BTreeSet::from([live.clone()]),
                "{name}: live tokens too"
            );
            // What no regular expression can do: check the CRC. Every rule flags a token
            // whose checksum is wrong; `memberpass scan` does not (see its tests).
            let forged = bad_checksum(t);
            assert_eq!(found(rule, &forged), BTreeSet::from([forged.clone()]), "{name}");
        }
    }
}

#[test]
fn gitleaks_and_trufflehog_find_tokens_on_consecutive_lines() {
    let a = token(TokenEnv::Test);
    let b = token(TokenEnv::Live);
    let file = format!("{a}\n{b}\nFIRST={a}\r\nSECOND={b}\n");
    for (name, rule) in rules().iter().filter(|(n, _)| *n != "github") {
        let all: Vec<String> = rule.captures_iter(&file).map(|c| c[1].to_owned()).collect();
        assert_eq!(all, [a.clone(), b.clone(), a.clone(), b.clone()], "{name}");
    }
}

#[test]
fn the_github_pattern_matches_its_own_test_string() {
    let github: serde_json::Value = serde_json::from_str(&doc("github-custom-pattern.json")).unwrap();
    let (_, rule) = rules().into_iter().find(|(n, _)| *n == "github").unwrap();
    assert_eq!(found(&rule, github["test_string"].as_str().unwrap()).len(), 1);
}
