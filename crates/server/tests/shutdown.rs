//! Graceful shutdown on every backend: in-flight state is released on the
//! server's own runtime without panicking (the PostgreSQL client must not
//! be closed on an async thread), and the bootstrap token's last use is
//! flushed.

use neocloud_server::{Config, Server};
use neocloud_store::testing::{fresh_db, TestBackend};

#[test]
fn servers_stop_cleanly_and_flush_token_use() {
    for b in TestBackend::ALL {
        let Some(db) = fresh_db(b) else { continue };
        let dir =
            std::env::temp_dir().join(format!("neocloud-shutdown-{}", neocloud_common::new_id()));
        let config = Config {
            listen: "127.0.0.1:0".into(),
            db: Some(db.url.clone()),
            data_dir: dir.clone(),
            token_flush_secs: 3600,
            ..Config::default()
        };
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let server = Server::bind(config).await.expect("bind");
            let addr = server.local_addr();
            let cancel = server.cancel_token();
            let run = tokio::spawn(server.run());
            let token =
                std::fs::read_to_string(dir.join("admin.token")).unwrap().trim().to_string();
            let status = tokio::task::spawn_blocking(move || {
                ureq::get(&format!("http://{addr}/v1/me"))
                    .set("Authorization", &format!("Bearer {token}"))
                    .call()
                    .map(|r| r.status())
                    .unwrap_or(0)
            })
            .await
            .unwrap();
            assert_eq!(status, 200, "[{}]", b.as_str());
            cancel.cancel();
            // The server (and with it the last store handle) is dropped here,
            // on a runtime thread.
            run.await.expect("server task").expect("server stops without error");
        });
        drop(rt);
        // The shutdown flush recorded the token's last use.
        let store = neocloud_store::Store::open(&db.url).unwrap();
        let used = store
            .read(|r| {
                r.query("SELECT COUNT(*) FROM api_tokens WHERE last_used_at IS NOT NULL", &[])
            })
            .unwrap();
        assert_eq!(used[0].i64(0).unwrap(), 1, "[{}] last use flushed at shutdown", b.as_str());
        drop(store);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
