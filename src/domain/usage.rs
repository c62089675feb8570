//! A token's usage (issue 21, item 2): its calls per UTC day — successes, refusals, and the
//! successes that were writes — counted from the entries its own calls leave, as they are chained.
//!
//! What counts (decided here, once, for every path that appends to the log): an entry whose actor
//! is a token (`api_token` or `mcp`) and that names the token (`token_id`), except `auth.failed` —
//! a failed authentication proves nobody held the token (a wrong secret, a revoked token), and a
//! stranger who knows an ID must not be able to draw on its owner's chart. So an entry *about* a
//! token by someone else (an admin revoking it: actor `human`; the server voiding its approvals:
//! actor `system`) is never its use, and a call another token made is that token's use.
//! `success` is a success, and also a write when the operation is a write (an idempotent replay is
//! not: nothing was written again); `denied` and `failed` are refusals — a refusal at the door
//! included (`auth.ip_not_allowed`, an MCP request refused before any message).

use std::collections::HashMap;

use schemars::JsonSchema;
use serde::Serialize;

use super::audit::{ActorKind, AuditDraft, Outcome};
use super::time::{DAY_MS, rfc3339};

/// The days a usage shows: today and the 29 before it (UTC).
pub const WINDOW_DAYS: i64 = 30;
/// The days kept: older rows are pruned by the maintenance pass.
pub const KEEP_DAYS: i64 = 40;

/// The UTC day (days since 1970-01-01) of a time in milliseconds.
pub fn day_of(ms: i64) -> i64 {
    ms.div_euclid(DAY_MS)
}

/// A day number as a date, `YYYY-MM-DD`.
pub fn date_of(day: i64) -> String {
    let mut s = rfc3339(day * DAY_MS);
    s.truncate(10);
    s
}

/// The counts of one token on one day (or over a window).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    pub successes: i64,
    pub refusals: i64,
    pub writes: i64,
}

impl Tally {
    /// What an entry adds to its token's day, and which token; `None` when it is no use of a
    /// token (see the module doc).
    pub fn of(entry: &AuditDraft) -> Option<(&str, Tally)> {
        let token_id = entry.token_id.as_deref()?;
        if !matches!(entry.actor_kind, ActorKind::ApiToken | ActorKind::Mcp) || entry.event == "auth.failed" {
            return None;
        }
        let replay = entry.properties.get("idempotent_replay") == Some(&serde_json::Value::Bool(true));
        let tally = match entry.outcome {
            Outcome::Success => Tally {
                successes: 1,
                refusals: 0,
                writes: i64::from(entry.write && !replay),
            },
            Outcome::Denied | Outcome::Failed => Tally {
                successes: 0,
                refusals: 1,
                writes: 0,
            },
        };
        Some((token_id, tally))
    }

    pub fn add(&mut self, other: Tally) {
        self.successes += other.successes;
        self.refusals += other.refusals;
        self.writes += other.writes;
    }

    /// Every call: the successes and the refusals (writes are successes).
    pub fn calls(&self) -> i64 {
        self.successes + self.refusals
    }
}

/// A token's calls over the last 30 days (UTC, today included): the totals and each day.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, JsonSchema)]
pub struct Usage {
    /// Calls that succeeded, over the 30 days.
    pub successes: i64,
    /// Calls refused or failed (`denied` or `failed` entries), over the 30 days.
    pub refusals: i64,
    /// Successful calls of write operations (counted among `successes` too).
    pub writes: i64,
    /// Every one of the 30 days, oldest first, the last one today (UTC); a day without calls
    /// has zeros.
    #[schemars(length(min = 30, max = 30))]
    pub days: Vec<UsageDay>,
}

/// One UTC day of a token's usage.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, JsonSchema)]
pub struct UsageDay {
    /// The UTC date, `YYYY-MM-DD`.
    #[schemars(extend("format" = "date"))]
    pub date: String,
    pub successes: i64,
    pub refusals: i64,
    pub writes: i64,
}

impl UsageDay {
    pub fn tally(&self) -> Tally {
        Tally {
            successes: self.successes,
            refusals: self.refusals,
            writes: self.writes,
        }
    }
}

impl Usage {
    /// The 30 days ending with the day `today`, from stored days (any order; days outside the
    /// window are left out).
    pub fn window(today: i64, stored: impl IntoIterator<Item = (i64, Tally)>) -> Usage {
        let first = today - (WINDOW_DAYS - 1);
        let mut per_day = [Tally::default(); WINDOW_DAYS as usize];
        for (day, tally) in stored {
            if (first..=today).contains(&day) {
                per_day[(day - first) as usize].add(tally);
            }
        }
        let mut total = Tally::default();
        let days = per_day
            .iter()
            .enumerate()
            .map(|(i, t)| {
                total.add(*t);
                UsageDay {
                    date: date_of(first + i as i64),
                    successes: t.successes,
                    refusals: t.refusals,
                    writes: t.writes,
                }
            })
            .collect();
        Usage {
            successes: total.successes,
            refusals: total.refusals,
            writes: total.writes,
            days,
        }
    }

    /// The window of each of `token_ids` (zeros for one without stored days), from the stored
    /// days of several tokens `(token_id, day, tally)`.
    pub fn per_token(today: i64, token_ids: &[&str], stored: Vec<(String, i64, Tally)>) -> HashMap<String, Usage> {
        let mut days: HashMap<String, Vec<(i64, Tally)>> = HashMap::new();
        for (token_id, day, tally) in stored {
            days.entry(token_id).or_default().push((day, tally));
        }
        token_ids
            .iter()
            .map(|id| {
                let usage = Usage::window(today, days.remove(*id).unwrap_or_default());
                ((*id).to_owned(), usage)
            })
            .collect()
    }

    pub fn tally(&self) -> Tally {
        Tally {
            successes: self.successes,
            refusals: self.refusals,
            writes: self.writes,
        }
    }

    /// Every call over the 30 days.
    pub fn calls(&self) -> i64 {
        self.successes + self.refusals
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn entry(actor: ActorKind, outcome: Outcome, write: bool) -> AuditDraft {
        let mut e = AuditDraft::system("update_project", Some("team".into()));
        e.actor_kind = actor;
        e.token_id = Some("tok".into());
        e.outcome = outcome;
        e.write = write;
        e
    }

    #[test]
    fn only_a_tokens_own_entries_count_and_writes_are_successes() {
        let t = |e: &AuditDraft| Tally::of(e).map(|(_, t)| (t.successes, t.refusals, t.writes));
        assert_eq!(t(&entry(ActorKind::ApiToken, Outcome::Success, true)), Some((1, 0, 1)));
        assert_eq!(t(&entry(ActorKind::Mcp, Outcome::Success, false)), Some((1, 0, 0)));
        assert_eq!(t(&entry(ActorKind::Mcp, Outcome::Denied, true)), Some((0, 1, 0)));
        assert_eq!(t(&entry(ActorKind::ApiToken, Outcome::Failed, false)), Some((0, 1, 0)));
        assert_eq!(t(&entry(ActorKind::Human, Outcome::Success, true)), None);
        assert_eq!(t(&entry(ActorKind::System, Outcome::Success, false)), None);
        let mut failed = entry(ActorKind::ApiToken, Outcome::Denied, false);
        failed.event = "auth.failed".into();
        assert_eq!(t(&failed), None);
        let mut none = entry(ActorKind::ApiToken, Outcome::Success, false);
        none.token_id = None;
        assert_eq!(t(&none), None);
        let replay = entry(ActorKind::ApiToken, Outcome::Success, true).properties(json!({"idempotent_replay": true}));
        assert_eq!(t(&replay), Some((1, 0, 0)));
    }

    #[test]
    fn the_window_is_thirty_days_oldest_first_ending_today() {
        let today = day_of(1_700_000_000_000);
        let one = Tally {
            successes: 2,
            refusals: 1,
            writes: 1,
        };
        let u = Usage::window(
            today,
            [(today, one), (today - 29, one), (today - 30, one), (today + 1, one)],
        );
        assert_eq!(u.days.len(), 30);
        assert_eq!(u.days[29].date, "2023-11-14");
        assert_eq!(u.days[0].date, "2023-10-16");
        assert_eq!(u.days[29].successes, 2);
        assert_eq!(u.days[0].refusals, 1);
        assert_eq!((u.successes, u.refusals, u.writes), (4, 2, 2));
        assert_eq!(u.calls(), 6);
    }
}
