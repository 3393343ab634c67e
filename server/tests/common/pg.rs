//! A PostgreSQL database made for one test and dropped after it: the one
//! drop guard of every test suite (the server's `tests/common`, its store
//! story, and the client's end-to-end tests include this file).

#![allow(dead_code)]

use sqlx::{Connection as _, Executor as _};

/// A PostgreSQL database made for one test, dropped (`WITH (FORCE)`) when
/// the guard goes, whether the test passed or not.
pub struct PgDatabase {
    admin_url: String,
    pub name: String,
}

impl PgDatabase {
    /// `None` (after printing "skipped") when `OPENK_TEST_POSTGRES_URL` is unset.
    pub async fn create(prefix: &str) -> Option<Self> {
        let Some(admin_url) = std::env::var("OPENK_TEST_POSTGRES_URL")
            .ok()
            .filter(|u| !u.trim().is_empty())
        else {
            println!("skipped: OPENK_TEST_POSTGRES_URL not set");
            return None;
        };
        let name = format!("{prefix}_{:016x}", rand::random::<u64>());
        let mut conn = sqlx::PgConnection::connect(&admin_url)
            .await
            .unwrap_or_else(|e| {
                panic!("OPENK_TEST_POSTGRES_URL is set but PostgreSQL is unreachable: {e}")
            });
        conn.execute(format!("CREATE DATABASE \"{name}\"").as_str())
            .await
            .expect("create the test database");
        conn.close().await.expect("close the admin connection");
        Some(Self { admin_url, name })
    }

    #[must_use]
    pub fn url(&self) -> String {
        let (base, query) = match self.admin_url.split_once('?') {
            Some((b, q)) => (b, Some(q)),
            None => (self.admin_url.as_str(), None),
        };
        let start = base.find("://").map_or(0, |i| i + 3);
        let path = base[start..].find('/').map_or(base.len(), |i| start + i);
        let mut out = format!("{}/{}", &base[..path], self.name);
        if let Some(q) = query {
            out.push('?');
            out.push_str(q);
        }
        out
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let admin = self.admin_url.clone();
        let sql = format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.name);
        // Drop may run inside a runtime: use a thread with its own.
        let outcome = std::thread::spawn(move || -> Result<(), String> {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            rt.block_on(async {
                let mut conn = sqlx::PgConnection::connect(&admin)
                    .await
                    .map_err(|e| e.to_string())?;
                conn.execute(sql.as_str())
                    .await
                    .map_err(|e| e.to_string())?;
                conn.close().await.map_err(|e| e.to_string())
            })
        })
        .join();
        match outcome {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("could not drop test database {}: {e}", self.name),
            Err(_) => eprintln!(
                "could not drop test database {}: thread panicked",
                self.name
            ),
        }
    }
}

impl PgDatabase {
    /// [`PgDatabase::create`] from synchronous code (its own runtime).
    #[must_use]
    pub fn create_blocking(prefix: &str) -> Option<Self> {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime")
            .block_on(Self::create(prefix))
    }
}
