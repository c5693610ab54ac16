//! Reading a stream through a consumer group: first this consumer's own
//! pending entries, then new ones, with entries claimed from consumers that
//! stopped, each with its delivery count.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use redis::aio::ConnectionManager;
use redis::{Value, cmd};

use crate::entry::{Entry, parse_autoclaim, parse_pending, parse_read};
use crate::error::Error;

/// Where a group reads, and how.
#[derive(Debug, Clone)]
pub(crate) struct Group {
    /// The stream's key.
    pub(crate) key: String,
    /// The consumer group.
    pub(crate) group: String,
    /// This consumer's name in the group.
    pub(crate) consumer: String,
    /// Whether to create the group (and the stream) if missing.
    pub(crate) create: bool,
    /// How long a read waits for new entries.
    pub(crate) block: Duration,
    /// Entries pending this long on any consumer are claimed; `None` claims
    /// nothing.
    pub(crate) claim_idle: Option<Duration>,
    /// How often to look for entries to claim.
    pub(crate) claim_every: Duration,
    /// The most entries this consumer has pending at once.
    pub(crate) in_flight: usize,
}

impl Group {
    /// Fails if a setting cannot work, with `max_deliveries` beside them.
    pub(crate) fn check(&self, max_deliveries: u64) -> Result<(), Error> {
        if self.in_flight == 0 {
            return Err(Error::Setting("`max_in_flight` must be at least 1"));
        }
        if self.block.as_millis() == 0 {
            return Err(Error::Setting("`block` must be at least 1 ms"));
        }
        if self.claim_idle.is_some_and(|idle| idle.as_millis() == 0) {
            return Err(Error::Setting("`claim_idle` must be at least 1 ms"));
        }
        if self.claim_every.is_zero() {
            return Err(Error::Setting("`claim_every` must not be zero"));
        }
        if max_deliveries == 0 {
            return Err(Error::Setting("`max_deliveries` must be at least 1"));
        }
        Ok(())
    }
}

/// A consumer's reads of its group.
pub(crate) struct Reader {
    conn: ConnectionManager,
    spec: Group,
    /// Whether the group is known to exist.
    ready: bool,
    /// While this consumer's own pending entries are re-read: the id after
    /// which to go on.
    history: Option<String>,
    /// The id of the newest entry a read of new entries gave.
    newest: String,
    /// Where the next claim goes on from, and when it is due.
    claim_cursor: String,
    next_claim: Instant,
}

impl Reader {
    pub(crate) fn new(conn: ConnectionManager, spec: Group) -> Reader {
        let next_claim = Instant::now();
        Reader {
            conn,
            spec,
            ready: false,
            history: Some("0".to_owned()),
            newest: "0".to_owned(),
            claim_cursor: "0-0".to_owned(),
            next_claim,
        }
    }

    /// Reads at most `count` entries: claimed ones when a claim is due and
    /// finds some, this consumer's own pending ones after a start or a
    /// failed read, and new ones otherwise, waiting up to the block time
    /// for them. Each comes with its delivery count.
    pub(crate) async fn read(&mut self, count: usize) -> Result<Vec<Entry>, Error> {
        if !self.ready {
            self.ensure_group().await?;
            self.ready = true;
        }
        if self.spec.claim_idle.is_some() && Instant::now() >= self.next_claim {
            let claimed = self.claim(count).await?;
            if !claimed.is_empty() {
                return Ok(claimed);
            }
        }
        if let Some(after) = self.history.clone() {
            let mut entries = self.xreadgroup(count, None, &after).await?;
            match entries.last() {
                None => self.history = None,
                Some(last) => {
                    self.history = Some(last.id.clone());
                    self.count_deliveries(&mut entries).await?;
                    return Ok(entries);
                }
            }
        }
        match self.xreadgroup(count, Some(self.spec.block), ">").await {
            Ok(entries) => {
                if let Some(last) = entries.last() {
                    self.newest.clone_from(&last.id);
                }
                Ok(entries)
            }
            Err(err) => {
                // Redis may have delivered entries whose answer was lost:
                // they are pending on this consumer, after the newest
                // entry it saw. Read them again first.
                self.history = Some(self.newest.clone());
                Err(err)
            }
        }
    }

    /// `XREADGROUP` of at most `count` entries after `from` (`>` for new
    /// ones), blocking for `block` if given.
    async fn xreadgroup(
        &mut self,
        count: usize,
        block: Option<Duration>,
        from: &str,
    ) -> Result<Vec<Entry>, Error> {
        let mut read = cmd("XREADGROUP");
        read.arg("GROUP")
            .arg(&self.spec.group)
            .arg(&self.spec.consumer)
            .arg("COUNT")
            .arg(count);
        if let Some(block) = block {
            read.arg("BLOCK").arg(block.as_millis().max(1) as u64);
        }
        read.arg("STREAMS").arg(&self.spec.key).arg(from);
        let answer: Value = read.query_async(&mut self.conn).await?;
        parse_read(answer)
    }

    /// Claims entries pending on any consumer for longer than the claim
    /// time, at most `count`, with their delivery counts.
    async fn claim(&mut self, count: usize) -> Result<Vec<Entry>, Error> {
        let idle = self.spec.claim_idle.unwrap_or_default();
        let answer: Value = cmd("XAUTOCLAIM")
            .arg(&self.spec.key)
            .arg(&self.spec.group)
            .arg(&self.spec.consumer)
            .arg(idle.as_millis() as u64)
            .arg(&self.claim_cursor)
            .arg("COUNT")
            .arg(count)
            .query_async(&mut self.conn)
            .await?;
        // Entries deleted from the stream while pending are dropped from
        // the pending list by the claim itself.
        let (cursor, mut entries, _deleted) = parse_autoclaim(answer)?;
        if cursor == "0-0" {
            // A full pass: the next one is due after the interval.
            self.next_claim = Instant::now() + self.spec.claim_every;
        }
        self.claim_cursor = cursor;
        self.count_deliveries(&mut entries).await?;
        Ok(entries)
    }

    /// Sets the delivery count of each of `entries`, pending on this
    /// consumer, from the group's pending list.
    async fn count_deliveries(&mut self, entries: &mut [Entry]) -> Result<(), Error> {
        let (Some(first), Some(last)) = (entries.first(), entries.last()) else {
            return Ok(());
        };
        let answer: Value = cmd("XPENDING")
            .arg(&self.spec.key)
            .arg(&self.spec.group)
            .arg(&first.id)
            .arg(&last.id)
            // Entries of this consumer's still in flight may lie between.
            .arg(entries.len() + self.spec.in_flight)
            .arg(&self.spec.consumer)
            .query_async(&mut self.conn)
            .await?;
        let counts: HashMap<String, u64> = parse_pending(answer)?.into_iter().collect();
        for entry in entries {
            entry.deliveries = counts.get(&entry.id).copied().unwrap_or(1);
        }
        Ok(())
    }

    /// Creates the group, and the stream with it, if asked to and missing.
    async fn ensure_group(&mut self) -> Result<(), Error> {
        if !self.spec.create {
            return Ok(());
        }
        let created: Result<Value, redis::RedisError> = cmd("XGROUP")
            .arg("CREATE")
            .arg(&self.spec.key)
            .arg(&self.spec.group)
            .arg("0")
            .arg("MKSTREAM")
            .query_async(&mut self.conn)
            .await;
        match created {
            Ok(_) => Ok(()),
            Err(err) if err.code() == Some("BUSYGROUP") => Ok(()),
            Err(err) => Err(err.into()),
        }
    }
}
