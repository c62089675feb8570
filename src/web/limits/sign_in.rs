//! The dashboard's sign-in limits: failed sign-ins per (account, client address) and per client
//! address, never per account alone, so nobody can lock an owner out from another address.
//!
//! An attempt is reserved before its password is checked (argon2 is the expensive part, and
//! parallel attempts must not all be checked before the first failure is counted); a sign-in
//! that succeeds gives its reservation back, so only failures count. The buckets are GCRA, like
//! the others: in this process's memory on SQLite, in PostgreSQL's `rate_limits` table (shared by
//! every replica) otherwise. Unlike `governor`'s, a memory bucket here can give a call back.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use sqlx::AnyPool;

use super::bucket::{Sweeper, Wait, micros_to_seconds, whole_seconds};
use crate::store::limits as shared;

/// An address may fail this many times as often as it may fail for one account: a few people
/// behind one NAT mistyping, not one address guessing through a list of accounts.
pub const PER_ADDRESS_FACTOR: u32 = 4;

/// One GCRA bucket per key in memory, which can give a call back.
struct Gcra {
    quota: Option<shared::Quota>,
    /// When each key's bucket is next full (its theoretical arrival time).
    tats: Mutex<HashMap<String, Instant>>,
    sweeper: Sweeper,
}

impl Gcra {
    fn new(quota: Option<shared::Quota>) -> Self {
        Gcra {
            quota,
            tats: Mutex::new(HashMap::new()),
            sweeper: Sweeper::new(),
        }
    }

    /// The same decision as `store::limits::take`: allowed while, after it, the bucket is no
    /// further ahead of now than the burst.
    fn take(&self, key: &str) -> Option<Wait> {
        let quota = self.quota?;
        let (interval, burst) = (micros(quota.interval_us), micros(quota.burst_us));
        let now = Instant::now();
        let mut tats = self.tats.lock().unwrap_or_else(PoisonError::into_inner);
        if self.sweeper.due(tats.len()) {
            tats.retain(|_, tat| *tat > now);
        }
        let next = (*tats.get(key).unwrap_or(&now)).max(now) + interval;
        if next - now > burst {
            return Some(whole_seconds(next - burst - now));
        }
        tats.insert(key.to_owned(), next);
        None
    }

    fn give_back(&self, key: &str) {
        let Some(quota) = self.quota else { return };
        if let Some(tat) = self.tats.lock().unwrap_or_else(PoisonError::into_inner).get_mut(key) {
            *tat = tat.checked_sub(micros(quota.interval_us)).unwrap_or(*tat);
        }
    }
}

fn micros(us: i64) -> Duration {
    Duration::from_micros(us.max(0) as u64)
}

enum Store {
    Memory {
        pair: Gcra,
        address: Gcra,
    },
    Shared {
        pool: AnyPool,
        pair: Option<shared::Quota>,
        address: Option<shared::Quota>,
    },
}

/// The buckets of failed sign-ins.
pub struct SignInLimits {
    store: Store,
}

/// An attempt's claim on its buckets, taken before its password is checked.
#[must_use = "a successful sign-in gives its reservation back"]
pub struct Reservation {
    pair: String,
    address: String,
}

impl SignInLimits {
    /// `per_pair` failures a minute for one account from one address (0: off), and
    /// [`PER_ADDRESS_FACTOR`] times that for one address, whatever the accounts.
    pub fn in_memory(per_pair: u32) -> Self {
        SignInLimits {
            store: Store::Memory {
                pair: Gcra::new(shared::Quota::per_minute(per_pair)),
                address: Gcra::new(shared::Quota::per_minute(per_pair.saturating_mul(PER_ADDRESS_FACTOR))),
            },
        }
    }

    /// The same limits in PostgreSQL, shared by every replica (the table exists already).
    pub fn shared(pool: AnyPool, per_pair: u32) -> Self {
        SignInLimits {
            store: Store::Shared {
                pool,
                pair: shared::Quota::per_minute(per_pair),
                address: shared::Quota::per_minute(per_pair.saturating_mul(PER_ADDRESS_FACTOR)),
            },
        }
    }

    /// Reserves one attempt for `account` (the email as typed) from `address`: one call from the
    /// (account, address) bucket and one from the address's, both or neither. `Ok(Err(wait))`
    /// when either is empty; then the password must not be checked.
    pub async fn reserve(&self, account: &str, address: &str) -> sqlx::Result<Result<Reservation, Wait>> {
        let reservation = Reservation {
            pair: pair_key(account, address),
            address: format!("sign-in-ip:{address}"),
        };
        if let Some(wait) = self.take(Bucket::Pair, &reservation.pair).await? {
            return Ok(Err(wait));
        }
        if let Some(wait) = self.take(Bucket::Address, &reservation.address).await? {
            self.give_back(Bucket::Pair, &reservation.pair).await?;
            return Ok(Err(wait));
        }
        Ok(Ok(reservation))
    }

    /// Gives a reservation back: its sign-in succeeded, so it was no failure.
    pub async fn give_back_reservation(&self, reservation: Reservation) -> sqlx::Result<()> {
        self.give_back(Bucket::Pair, &reservation.pair).await?;
        self.give_back(Bucket::Address, &reservation.address).await
    }

    async fn take(&self, bucket: Bucket, key: &str) -> sqlx::Result<Option<Wait>> {
        match &self.store {
            Store::Memory { pair, address } => Ok(bucket.pick(pair, address).take(key)),
            Store::Shared { pool, pair, address } => {
                let Some(quota) = *bucket.pick(pair, address) else {
                    return Ok(None);
                };
                let verdict = shared::take(pool, Some((key, quota)), None).await?;
                Ok(verdict.refused.map(micros_to_seconds))
            }
        }
    }

    async fn give_back(&self, bucket: Bucket, key: &str) -> sqlx::Result<()> {
        match &self.store {
            Store::Memory { pair, address } => {
                bucket.pick(pair, address).give_back(key);
                Ok(())
            }
            Store::Shared { pool, pair, address } => match *bucket.pick(pair, address) {
                Some(quota) => shared::give_back(pool, key, quota).await,
                None => Ok(()),
            },
        }
    }
}

#[derive(Clone, Copy)]
enum Bucket {
    Pair,
    Address,
}

impl Bucket {
    fn pick<T>(self, pair: T, address: T) -> T {
        match self {
            Bucket::Pair => pair,
            Bucket::Address => address,
        }
    }
}

/// The (account, address) key: the account as a digest, so a 16 KiB "email" costs a bucket no
/// more memory than a short one.
fn pair_key(account: &str, address: &str) -> String {
    let account = account.trim().to_lowercase();
    let digest = hex::encode(Sha256::digest(account.as_bytes()));
    format!("sign-in:{address}:{}", &digest[..32])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_memory_bucket_refuses_past_its_burst_and_takes_a_call_back() {
        let bucket = Gcra::new(shared::Quota::per_minute(3));
        for _ in 0..3 {
            assert_eq!(bucket.take("k"), None);
        }
        let wait = bucket.take("k").expect("the fourth call waits");
        assert!((1..=20).contains(&wait), "{wait}");
        assert!(bucket.take("other").is_none(), "keys are apart");
        bucket.give_back("k");
        assert_eq!(bucket.take("k"), None, "the call given back is there again");
        assert!(bucket.take("k").is_some());
    }

    #[test]
    fn the_account_is_compared_as_typed_by_a_person_and_kept_as_a_digest() {
        let key = pair_key(" Dash@MemberPass.test ", "10.0.0.1");
        assert_eq!(key, pair_key("dash@memberpass.test", "10.0.0.1"));
        assert_ne!(key, pair_key("dash@memberpass.test", "10.0.0.2"));
        assert!(!key.contains("dash"));
    }
}
