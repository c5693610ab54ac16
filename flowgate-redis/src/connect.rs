//! The connections to one Redis server: blocking reads get a connection
//! each, while acknowledgements and writes share one.

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use crate::error::Error;

/// The longest a command other than a blocking read may take before it
/// counts as failed, and is retried on a fresh connection.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a blocking read may take beyond its own `BLOCK` time.
const BLOCK_MARGIN: Duration = Duration::from_secs(5);

/// A Redis server, as the connector reaches it.
///
/// Made from a URL; no connection is made until the first command. Each
/// source gets a connection of its own for its blocking reads, so that a
/// read waiting for entries holds up nothing else; acknowledgements,
/// dead letters and writes of every source and sink made from one `Redis`
/// share a second connection, which multiplexes their commands. Both
/// reconnect by themselves after the server restarts or the network
/// fails, and the connector retries what failed.
///
/// Cloning is cheap and shares the connection.
///
/// # Examples
///
/// ```
/// let redis = flowgate_redis::Redis::open("redis://127.0.0.1:6379/")?;
/// # let _ = redis;
/// assert!(flowgate_redis::Redis::open("not a url").is_err());
/// # Ok::<(), flowgate_redis::Error>(())
/// ```
#[derive(Clone)]
pub struct Redis {
    client: redis::Client,
    shared: ConnectionManager,
}

impl Redis {
    /// The server at `url`, such as `redis://127.0.0.1:6379/`.
    ///
    /// Fails only if the URL cannot be read; an unreachable server shows in
    /// the first command.
    pub fn open(url: &str) -> Result<Redis, Error> {
        let client = redis::Client::open(url)?;
        let shared = connect(&client, COMMAND_TIMEOUT)?;
        Ok(Redis { client, shared })
    }

    /// The connection that acknowledgements and writes share.
    pub(crate) fn shared(&self) -> ConnectionManager {
        self.shared.clone()
    }

    /// A connection of its own for blocking reads of up to `block`: its
    /// response timeout is longer than the block, so that a read that
    /// waits its full time is not cut off by the client.
    pub(crate) fn for_blocking_reads(&self, block: Duration) -> Result<ConnectionManager, Error> {
        connect(&self.client, block + BLOCK_MARGIN)
    }
}

impl std::fmt::Debug for Redis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redis")
            .field(
                "server",
                &self.client.get_connection_info().addr().to_string(),
            )
            .finish()
    }
}

/// A connection that is made when first used, times out each command after
/// `timeout`, and reconnects after a failure.
fn connect(client: &redis::Client, timeout: Duration) -> Result<ConnectionManager, Error> {
    let config = ConnectionManagerConfig::new()
        .set_response_timeout(Some(timeout))
        .set_connection_timeout(Some(Duration::from_secs(2)))
        .set_number_of_retries(3)
        .set_min_delay(Duration::from_millis(20))
        .set_max_delay(Duration::from_secs(1));
    Ok(ConnectionManager::new_lazy_with_config(
        client.clone(),
        config,
    )?)
}
