//! [`RedisBackend`]: consumer groups on a Redis server, through the `redis`
//! crate on whichever of smol and tokio runs the pipeline.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures::FutureExt as _;
use redis::aio::{ConnectionManager, ConnectionManagerConfig, MultiplexedConnection};
use redis::{AsyncConnectionConfig, Client, Value};

use super::{parse, Backend, BackendFuture, DeadLetterEntry, GroupKey, ReadFrom, Received};
use crate::{EntryId, Error, Fields};

/// Consumer groups on a Redis server (5.0 or newer; `XAUTOCLAIM` needs 6.2).
///
/// Connections are made on first use, inside the task that uses them, so
/// the `redis` client runs on the pipeline's runtime (tokio inside a tokio
/// runtime, smol otherwise). Ordinary commands share one
/// [`ConnectionManager`], which reconnects after a failure; each source's
/// blocking reads get a connection of their own with no response timeout,
/// so a `BLOCK` is never cut short.
///
/// # Examples
///
/// ```
/// use flowline_redis::RedisBackend;
///
/// let backend = RedisBackend::open("redis://127.0.0.1:6379/").unwrap();
/// assert!(RedisBackend::open("not a url").is_err());
/// # drop(backend);
/// ```
#[derive(Clone)]
pub struct RedisBackend {
    client: Client,
    connect_timeout: Duration,
    shared: Arc<Mutex<Option<ConnectionManager>>>,
    /// The blocking-read connection of a [`reader`](Backend::reader) handle.
    blocking: Arc<Mutex<Option<MultiplexedConnection>>>,
}

impl fmt::Debug for RedisBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisBackend")
            .field("server", &self.client.get_connection_info().addr())
            .finish_non_exhaustive()
    }
}

impl RedisBackend {
    /// A backend for the server at `url` (`redis://host:port/db`). Connects
    /// on first use.
    ///
    /// # Errors
    ///
    /// If `url` is not a Redis URL.
    pub fn open(url: &str) -> Result<Self, redis::RedisError> {
        Ok(Self::new(Client::open(url)?))
    }

    /// A backend over an existing client.
    pub fn new(client: Client) -> Self {
        RedisBackend {
            client,
            connect_timeout: Duration::from_secs(2),
            shared: Arc::default(),
            blocking: Arc::default(),
        }
    }

    /// How long a connection attempt may take (default 2 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// The shared connection for ordinary commands, made on first use.
    ///
    /// # Errors
    ///
    /// If the server cannot be reached.
    pub async fn connection(&self) -> Result<ConnectionManager, redis::RedisError> {
        if let Some(conn) = lock(&self.shared).clone() {
            return Ok(conn);
        }
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(self.connect_timeout))
            // Large pipelines (a thousand XACKs) may take longer than the
            // client's 500 ms default on a busy machine.
            .set_response_timeout(Some(Duration::from_secs(30)))
            .set_number_of_retries(1);
        let conn = self
            .client
            .get_connection_manager_with_config(config)
            .await?;
        *lock(&self.shared) = Some(conn.clone());
        Ok(conn)
    }

    async fn blocking_connection(&self) -> Result<MultiplexedConnection, redis::RedisError> {
        if let Some(conn) = lock(&self.blocking).clone() {
            return Ok(conn);
        }
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.connect_timeout))
            .set_response_timeout(None);
        let conn = self
            .client
            .get_multiplexed_async_connection_with_config(&config)
            .await?;
        *lock(&self.blocking) = Some(conn.clone());
        Ok(conn)
    }

    async fn query(&self, cmd: &redis::Cmd) -> Result<Value, redis::RedisError> {
        let mut conn = self.connection().await?;
        cmd.query_async(&mut conn).await
    }

    async fn query_pipe(&self, pipe: &redis::Pipeline) -> Result<Vec<Value>, redis::RedisError> {
        let mut conn = self.connection().await?;
        pipe.query_async(&mut conn).await
    }

    /// Delivery counts of `consumer`'s pending entries in `[first, last]`.
    async fn counts(
        &self,
        key: &GroupKey,
        consumer: &str,
        entries: Vec<crate::Entry>,
    ) -> Result<Vec<Received>, redis::RedisError> {
        let (Some(first), Some(last)) = (entries.first(), entries.last()) else {
            return Ok(Vec::new());
        };
        let reply = self
            .query(
                redis::cmd("XPENDING")
                    .arg(&*key.stream)
                    .arg(&*key.group)
                    .arg(first.id.to_string())
                    .arg(last.id.to_string())
                    .arg(entries.len())
                    .arg(consumer),
            )
            .await?;
        Ok(with_counts(entries, parse::pending_counts(reply)))
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Pairs entries with their delivery counts (1 when XPENDING did not list
/// one: it was acked meanwhile).
fn with_counts(entries: Vec<crate::Entry>, counts: Vec<(EntryId, u64)>) -> Vec<Received> {
    let mut counts = counts.into_iter().peekable();
    entries
        .into_iter()
        .map(|entry| {
            while counts.next_if(|(id, _)| *id < entry.id).is_some() {}
            let deliveries = counts
                .next_if(|(id, _)| *id == entry.id)
                .map_or(1, |(_, n)| n);
            Received { entry, deliveries }
        })
        .collect()
}

fn xadd(cmd: &mut redis::Cmd, stream: &str, max_len: Option<usize>, fields: &Fields) {
    cmd.arg("XADD").arg(stream);
    if let Some(max) = max_len {
        cmd.arg("MAXLEN").arg("~").arg(max);
    }
    cmd.arg("*");
    for (k, v) in fields {
        cmd.arg(k).arg(v);
    }
}

impl Backend for RedisBackend {
    fn create_group(&self, key: GroupKey, create: bool) -> BackendFuture<()> {
        let this = self.clone();
        async move {
            let fail = |e| Error::redis(e, &key.stream, Some(&key.group), "XGROUP CREATE");
            let mut cmd = redis::cmd("XGROUP");
            cmd.arg("CREATE")
                .arg(&*key.stream)
                .arg(&*key.group)
                .arg("0");
            if create {
                cmd.arg("MKSTREAM");
            }
            match this.query(&cmd).await {
                Ok(_) => Ok(()),
                Err(e) if e.code() == Some("BUSYGROUP") => Ok(()),
                // Without MKSTREAM a missing stream is reported as ERR; the
                // group is missing either way.
                Err(e) if !create && e.code() == Some("ERR") => Err(key.error(
                    crate::ErrorKind::NoGroup,
                    "XGROUP CREATE",
                    "the stream does not exist and the source may not create it",
                )),
                Err(e) => Err(fail(e)),
            }
        }
        .boxed()
    }

    fn read(
        &self,
        key: GroupKey,
        consumer: Arc<str>,
        from: ReadFrom,
        count: usize,
    ) -> BackendFuture<Vec<Received>> {
        let this = self.clone();
        async move {
            let fail = |e| Error::redis(e, &key.stream, Some(&key.group), "XREADGROUP");
            let mut read = redis::cmd("XREADGROUP");
            read.arg("GROUP")
                .arg(&*key.group)
                .arg(&*consumer)
                .arg("COUNT")
                .arg(count);
            match from {
                ReadFrom::New(block) => {
                    if !block.is_zero() {
                        read.arg("BLOCK").arg(block.as_millis().max(1) as u64);
                    }
                    read.arg("STREAMS").arg(&*key.stream).arg(">");
                    let mut conn = this.blocking_connection().await.map_err(fail)?;
                    match read.query_async::<Value>(&mut conn).await {
                        Ok(reply) => Ok(parse::read_reply(reply)
                            .into_iter()
                            .map(|entry| Received {
                                entry,
                                deliveries: 1,
                            })
                            .collect()),
                        Err(e) => {
                            if e.is_io_error() || e.is_connection_dropped() {
                                // Made again on the next read.
                                *lock(&this.blocking) = None;
                            }
                            Err(fail(e))
                        }
                    }
                }
                ReadFrom::PendingAfter(after) => {
                    read.arg("STREAMS").arg(&*key.stream).arg(after.to_string());
                    // The counts are read in the same round trip: the read
                    // has just raised them, XPENDING lists the same ids.
                    let mut pipe = redis::pipe();
                    pipe.add_command(read)
                        .cmd("XPENDING")
                        .arg(&*key.stream)
                        .arg(&*key.group)
                        .arg(format!("({after}"))
                        .arg("+")
                        .arg(count)
                        .arg(&*consumer);
                    let mut replies = this.query_pipe(&pipe).await.map_err(fail)?.into_iter();
                    let entries = parse::read_reply(replies.next().unwrap_or_default());
                    let counts = parse::pending_counts(replies.next().unwrap_or_default());
                    Ok(with_counts(entries, counts))
                }
            }
        }
        .boxed()
    }

    fn claim(
        &self,
        key: GroupKey,
        consumer: Arc<str>,
        min_idle: Duration,
        start: EntryId,
        count: usize,
    ) -> BackendFuture<(EntryId, Vec<Received>)> {
        let this = self.clone();
        async move {
            let fail = |e| Error::redis(e, &key.stream, Some(&key.group), "XAUTOCLAIM");
            let reply = this
                .query(
                    redis::cmd("XAUTOCLAIM")
                        .arg(&*key.stream)
                        .arg(&*key.group)
                        .arg(&*consumer)
                        .arg(min_idle.as_millis() as u64)
                        .arg(start.to_string())
                        .arg("COUNT")
                        .arg(count),
                )
                .await
                .map_err(fail)?;
            let (cursor, entries) = parse::claim_reply(reply);
            let received = this.counts(&key, &consumer, entries).await.map_err(fail)?;
            Ok((cursor, received))
        }
        .boxed()
    }

    fn ack(&self, key: GroupKey, ids: Vec<EntryId>) -> BackendFuture<u64> {
        let this = self.clone();
        async move {
            let mut cmd = redis::cmd("XACK");
            cmd.arg(&*key.stream).arg(&*key.group);
            // One reused buffer: no allocation or formatting per id.
            let mut buf = [0u8; 41];
            for id in &ids {
                cmd.arg(id.encode(&mut buf));
            }
            match this.query(&cmd).await {
                Ok(Value::Int(n)) => Ok(n as u64),
                Ok(_) => Ok(0),
                Err(e) => Err(Error::redis(e, &key.stream, Some(&key.group), "XACK")),
            }
        }
        .boxed()
    }

    fn dead_letter(
        &self,
        key: GroupKey,
        dead_stream: Arc<str>,
        letters: Vec<DeadLetterEntry>,
    ) -> BackendFuture<()> {
        let this = self.clone();
        async move {
            let fail = |e| Error::redis(e, &key.stream, Some(&key.group), "dead letter");
            let mut pipe = redis::pipe();
            pipe.atomic();
            for letter in letters {
                let mut fields = match letter.fields {
                    Some(fields) => fields,
                    None => {
                        let id = letter.id.to_string();
                        let reply = this
                            .query(redis::cmd("XRANGE").arg(&*key.stream).arg(&id).arg(&id))
                            .await
                            .map_err(fail)?;
                        parse::entries(reply)
                            .pop()
                            .map(|e| e.fields)
                            .unwrap_or_default()
                    }
                };
                fields.push(("dead_letter_of".into(), letter.id.to_string().into_bytes()));
                fields.push((
                    "deliveries".into(),
                    letter.deliveries.to_string().into_bytes(),
                ));
                fields.push(("reason".into(), letter.reason.into_bytes()));
                let mut add = redis::Cmd::new();
                xadd(&mut add, &dead_stream, None, &fields);
                pipe.add_command(add).ignore();
                pipe.cmd("XACK")
                    .arg(&*key.stream)
                    .arg(&*key.group)
                    .arg(letter.id.to_string())
                    .ignore();
            }
            this.query_pipe(&pipe).await.map_err(fail)?;
            Ok(())
        }
        .boxed()
    }

    fn add(
        &self,
        stream: Arc<str>,
        entries: Arc<Vec<Fields>>,
        max_len: Option<usize>,
    ) -> BackendFuture<Vec<EntryId>> {
        let this = self.clone();
        async move {
            let mut pipe = redis::pipe();
            for fields in entries.iter() {
                let mut cmd = redis::Cmd::new();
                xadd(&mut cmd, &stream, max_len, fields);
                pipe.add_command(cmd);
            }
            let replies = this
                .query_pipe(&pipe)
                .await
                .map_err(|e| Error::redis(e, &stream, None, "XADD"))?;
            Ok(replies.into_iter().filter_map(parse::id).collect())
        }
        .boxed()
    }

    fn reader(&self) -> Arc<dyn Backend> {
        Arc::new(RedisBackend {
            blocking: Arc::default(),
            ..self.clone()
        })
    }
}
