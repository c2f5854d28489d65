//! What the store's tests share: a PostgreSQL schema of their own.

/// A fresh schema on `EMBER_TEST_DATABASE_URL`, dropped by [`Schema::drop_now`].
pub struct Schema {
    admin: tokio_postgres::Client,
    name: String,
    /// The database URL that puts connections in this schema.
    pub url: String,
}

impl Schema {
    /// Creates a schema named `<prefix>_<random>`.
    pub async fn new(prefix: &str) -> Self {
        let admin_url = std::env::var("EMBER_TEST_DATABASE_URL").expect(
            "EMBER_TEST_DATABASE_URL must name a PostgreSQL database (run `cargo xtask test`)",
        );
        let name = format!("{prefix}_{}", uuid::Uuid::new_v4().simple());
        let admin = connect(&admin_url).await;
        admin
            .batch_execute(&format!("CREATE SCHEMA {name}"))
            .await
            .unwrap();
        let sep = if admin_url.contains('?') { '&' } else { '?' };
        let url = format!("{admin_url}{sep}options=-csearch_path%3D{name}");
        Schema { admin, name, url }
    }

    /// A connection to this schema (not every test binary uses it).
    #[allow(dead_code)]
    pub async fn client(&self) -> tokio_postgres::Client {
        connect(&self.url).await
    }

    pub async fn drop_now(self) {
        self.admin
            .batch_execute(&format!("DROP SCHEMA {} CASCADE", self.name))
            .await
            .unwrap();
    }
}

async fn connect(url: &str) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    client
}
