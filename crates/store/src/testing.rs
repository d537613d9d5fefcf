//! Fresh, throw-away stores for tests, on either backend.
//!
//! PostgreSQL tests need `NEOCLOUD_TEST_POSTGRES_URL` (a URL whose user may
//! create databases, e.g. `postgres://postgres:pw@127.0.0.1:54329/postgres`);
//! each store gets its own database, dropped when the guard goes. Without
//! the variable the test is skipped loudly, and fails when `CI` is set: CI
//! must run the suite on both backends.

use crate::Store;
use neocloud_common::new_id;
use std::path::PathBuf;

pub const POSTGRES_ENV: &str = "NEOCLOUD_TEST_POSTGRES_URL";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TestBackend {
    Sqlite,
    Postgres,
}

impl TestBackend {
    pub const ALL: [TestBackend; 2] = [TestBackend::Sqlite, TestBackend::Postgres];

    pub fn as_str(self) -> &'static str {
        match self {
            TestBackend::Sqlite => "sqlite",
            TestBackend::Postgres => "postgres",
        }
    }
}

/// Removes the database (or file) when dropped.
pub struct TestDb {
    pub url: String,
    cleanup: Cleanup,
}

enum Cleanup {
    Dir(PathBuf),
    Database { admin_url: String, name: String },
}

impl Drop for TestDb {
    fn drop(&mut self) {
        match &self.cleanup {
            Cleanup::Dir(d) => {
                let _ = std::fs::remove_dir_all(d);
            }
            Cleanup::Database { admin_url, name } => {
                if let Ok(mut c) = postgres::Client::connect(admin_url, postgres::NoTls) {
                    let _ =
                        c.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
                }
            }
        }
    }
}

/// A fresh database URL for `backend`; `None` (after a loud message) where
/// the backend is not available outside CI.
pub fn fresh_db(backend: TestBackend) -> Option<TestDb> {
    match backend {
        TestBackend::Sqlite => {
            let dir = std::env::temp_dir().join(format!("neocloud-test-{}", new_id()));
            std::fs::create_dir_all(&dir).expect("create temp dir");
            let url = format!("sqlite://{}", dir.join("neocloud.db").display());
            Some(TestDb { url, cleanup: Cleanup::Dir(dir) })
        }
        TestBackend::Postgres => {
            let admin_url = match std::env::var(POSTGRES_ENV) {
                Ok(u) if !u.is_empty() => u,
                _ => {
                    if std::env::var_os("CI").is_some() {
                        panic!("{POSTGRES_ENV} is not set but CI is: the PostgreSQL suite must run in CI");
                    }
                    eprintln!(
                        "SKIPPED (PostgreSQL): {POSTGRES_ENV} is not set; this test ran on SQLite only"
                    );
                    return None;
                }
            };
            let name = format!("nctest_{}", new_id().replace('-', ""));
            let mut c = postgres::Client::connect(&admin_url, postgres::NoTls)
                .unwrap_or_else(|e| panic!("{POSTGRES_ENV}: cannot connect: {e}"));
            c.batch_execute(&format!("CREATE DATABASE {name}")).expect("create test database");
            let url = match admin_url.rfind('/') {
                Some(i) if i > admin_url.find("://").map(|s| s + 2).unwrap_or(0) => {
                    let (base, rest) = admin_url.split_at(i);
                    let query = rest.find('?').map(|q| &rest[q..]).unwrap_or("");
                    format!("{base}/{name}{query}")
                }
                _ => format!("{admin_url}/{name}"),
            };
            Some(TestDb { url, cleanup: Cleanup::Database { admin_url, name } })
        }
    }
}

/// A fresh, migrated store on `backend`, with its guard.
pub fn fresh_store(backend: TestBackend) -> Option<(Store, TestDb)> {
    let db = fresh_db(backend)?;
    let store = Store::open(&db.url).unwrap_or_else(|e| panic!("open {}: {e:?}", db.url));
    Some((store, db))
}
