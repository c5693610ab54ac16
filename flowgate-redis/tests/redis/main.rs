//! The connector against a real `redis-server`, started by the tests on a
//! free loopback port. Without `redis-server` on PATH the tests print a
//! notice and pass, unless `FLOWGATE_REDIS_REQUIRED=1`.

#[path = "../support/server.rs"]
mod server;

#[path = "../support/crash.rs"]
mod workers;

mod helpers;

mod crash;
mod remote;
mod restart;
mod sink;
mod source;
