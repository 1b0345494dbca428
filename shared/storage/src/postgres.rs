//! PostgreSQL: for more than one machine. Workers on many hosts lease mailboxes from it;
//! `FOR UPDATE SKIP LOCKED` lets each leasing transaction pass over rows another worker is
//! leasing at that moment instead of waiting for them or taking them twice.

use sqlx::{PgPool, postgres::PgPoolOptions};

use crate::{Result, common::impl_database};

#[derive(Clone)]
pub struct Postgres {
    pool: PgPool,
}

impl Postgres {
    pub async fn connect(url: &str) -> Result<Self> {
        let pool = PgPoolOptions::new().max_connections(16).connect(url).await?;
        Ok(Self { pool })
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

impl_database!(Postgres, "../../migrations/postgres", "FOR UPDATE SKIP LOCKED");
