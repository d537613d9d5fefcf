//! Background work: the controllers' loops and the periodic tasks, in the
//! server's one `JoinSet`, stopped by its cancellation token.

use super::Shared;
use crate::config::Config;
use neocloud_common::time::now_micros;
use neocloud_store::idempotency;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// Background work: one JoinSet, stopped by the cancellation token.
pub(super) fn spawn_background(
    tasks: &mut JoinSet<()>,
    shared: &Arc<Shared>,
    cancel: &CancellationToken,
    config: &Config,
) {
    let flush_every = Duration::from_secs(config.token_flush_secs);
    let (s, c) = (shared.clone(), cancel.clone());
    tasks.spawn(async move {
        let mut tick = tokio::time::interval(flush_every);
        loop {
            tokio::select! {
                _ = c.cancelled() => return,
                _ = tick.tick() => {}
            }
            let s2 = s.clone();
            match tokio::task::spawn_blocking(move || s2.app.usage.flush(&s2.app.store)).await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => {
                    s.app.metrics.background_error("token_usage");
                    tracing::warn!(error = %e, "token last-used flush failed");
                }
                Err(e) => tracing::warn!(error = %e, "token last-used task panicked"),
            }
        }
    });
    // Where the lifecycle runs, with a poll interval.
    let run_health_watch = config.lifecycle_interval_ms > 0 && config.bmc_health_poll_secs > 0;
    let every = Duration::from_millis(config.lifecycle_interval_ms.max(100));
    let (s, c) = (shared.clone(), cancel.clone());
    // 0 disables the controller on this replica (another runs it).
    let run_lifecycle = config.lifecycle_interval_ms > 0;
    tasks.spawn(async move {
        if !run_lifecycle {
            return;
        }
        let mut tick = tokio::time::interval(every);
        let wake = s.app.lifecycle.wake.clone();
        loop {
            let tick = tokio::select! {
                _ = c.cancelled() => return,
                _ = tick.tick() => true,
                _ = wake.notified() => false,
            };
            // Start a step for every node with work (on a wake-up: the
            // nodes it names) and none running; do not wait for them (a
            // silent BMC must not hold up the others).
            let s2 = s.clone();
            let claimed = tokio::task::spawn_blocking(move || {
                if tick {
                    let silence = crate::boot::handlers::tenant_agent_silence(&s2.app.boot);
                    s2.app.metrics.set_nodes(crate::controllers::lifecycle::census(
                        &s2.app.store,
                        silence,
                        s2.app.lifecycle.firmware_update_timeout,
                    )?);
                }
                s2.app.lifecycle.claim(&s2.app.store, tick)
            })
            .await;
            let nodes = match claimed {
                Ok(Ok(nodes)) => nodes,
                Ok(Err(e)) => {
                    s.app.metrics.background_error("node_lifecycle");
                    tracing::warn!(error = %e, "node lifecycle pass failed");
                    continue;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "node lifecycle task panicked");
                    continue;
                }
            };
            for id in nodes {
                let s3 = s.clone();
                tokio::task::spawn_blocking(move || {
                    let res =
                        s3.app.lifecycle.step_node_chained(&s3.app.store, &s3.app.secrets, &id);
                    if let Err(e) = res {
                        s3.app.metrics.background_error("node_lifecycle");
                        tracing::warn!(node = %id, error = %e, "node lifecycle step failed");
                    }
                });
            }
        }
    });
    spawn_fabric(tasks, shared, cancel, config);
    spawn_iso_prebuild(tasks, shared, cancel);
    if run_health_watch {
        spawn_health_watch(tasks, shared, cancel);
    }
    let ttl = config.idempotency_ttl_secs as i64 * 1_000_000;
    let (s, c) = (shared.clone(), cancel.clone());
    tasks.spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(600));
        loop {
            tokio::select! {
                _ = c.cancelled() => return,
                _ = tick.tick() => {}
            }
            let s2 = s.clone();
            let before = now_micros() - ttl;
            match tokio::task::spawn_blocking(move || {
                s2.app.store.write(|w| idempotency::expire(w, before))
            })
            .await
            {
                Ok(Ok(n)) if n > 0 => tracing::info!(expired = n, "idempotency keys expired"),
                Ok(Ok(_)) => {}
                Ok(Err(e)) => {
                    s.app.metrics.background_error("idempotency_expiry");
                    tracing::warn!(error = %e, "idempotency expiry failed");
                }
                Err(e) => tracing::warn!(error = %e, "idempotency expiry task panicked"),
            }
        }
    });
}

/// Per-node ISOs built ahead of the boots that need them: a pass every
/// 30 s and when a node's address is set (see `NodeIsos::prebuild`).
fn spawn_iso_prebuild(tasks: &mut JoinSet<()>, shared: &Arc<Shared>, cancel: &CancellationToken) {
    let Some(isos) = shared.app.boot.node_isos.clone() else { return };
    let (s, c) = (shared.clone(), cancel.clone());
    tasks.spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(30));
        loop {
            tokio::select! {
                _ = c.cancelled() => return,
                _ = tick.tick() => {}
                _ = isos.wake.notified() => {}
            }
            let (s2, c2, isos2) = (s.clone(), c.clone(), isos.clone());
            match tokio::task::spawn_blocking(move || {
                isos2.prebuild(&s2.app.store, &|| c2.is_cancelled())
            })
            .await
            {
                Ok(Ok(p)) => {
                    if p.built > 0 {
                        tracing::info!(built = p.built, current = p.current, "per-node ISOs built");
                    }
                    if p.failed > 0 {
                        s.app.metrics.background_error("boot_iso");
                    }
                }
                Ok(Err(e)) => {
                    s.app.metrics.background_error("boot_iso");
                    tracing::warn!(error = %e, "per-node ISO pass failed");
                }
                Err(e) => tracing::warn!(error = %e, "per-node ISO task panicked"),
            }
        }
    });
}

/// The health watch (see `LifecycleController::watch_health`): a pass a
/// minute, each reading the idle nodes whose read is due.
fn spawn_health_watch(tasks: &mut JoinSet<()>, shared: &Arc<Shared>, cancel: &CancellationToken) {
    let (s, c) = (shared.clone(), cancel.clone());
    tasks.spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(60));
        loop {
            tokio::select! {
                _ = c.cancelled() => return,
                _ = tick.tick() => {}
            }
            let (s2, c2) = (s.clone(), c.clone());
            match tokio::task::spawn_blocking(move || {
                s2.app.lifecycle.watch_health(&s2.app.store, &s2.app.secrets, &|| c2.is_cancelled())
            })
            .await
            {
                Ok(Ok(p)) => {
                    if !p.critical.is_empty() {
                        tracing::warn!(
                            nodes = p.critical.len(),
                            "nodes reported Critical by their BMCs: inspecting them again"
                        );
                    }
                }
                Ok(Err(e)) => {
                    s.app.metrics.background_error("health_watch");
                    tracing::warn!(error = %e, "health watch pass failed");
                }
                Err(e) => tracing::warn!(error = %e, "health watch task panicked"),
            }
        }
    });
}

/// The fabric controller's loop: a pass per tick, and at once when an API
/// write or a release wakes it. A pass that pushed something wakes the
/// lifecycle controller (releases wait on their nodes' ports).
fn spawn_fabric(
    tasks: &mut JoinSet<()>,
    shared: &Arc<Shared>,
    cancel: &CancellationToken,
    config: &Config,
) {
    if config.fabric_interval_ms == 0 {
        return;
    }
    let every = Duration::from_millis(config.fabric_interval_ms.max(100));
    let settle = Duration::from_millis(100);
    let (s, c) = (shared.clone(), cancel.clone());
    tasks.spawn(async move {
        let mut tick = tokio::time::interval(every);
        let wake = s.app.fabric.wake.clone();
        let released = s.app.lifecycle.fabric_wake.clone();
        loop {
            let woken = tokio::select! {
                _ = c.cancelled() => return,
                _ = tick.tick() => false,
                _ = wake.notified() => true,
                _ = released.notified() => true,
            };
            // Changes come in bursts (a tenant attaching a gang of nodes):
            // let the burst land, so one pass pushes it once.
            if woken {
                tokio::time::sleep(settle).await;
            }
            let s2 = s.clone();
            match tokio::task::spawn_blocking(move || {
                s2.app.fabric.pass(&s2.app.store, &s2.app.secrets)
            })
            .await
            {
                Ok(Ok(r)) => {
                    s.app.metrics.fabric_pass(r.pushed, r.repaired, r.failed);
                    if r.pushed + r.repaired > 0 {
                        s.app.lifecycle.wake_all();
                    }
                }
                Ok(Err(e)) => {
                    s.app.metrics.background_error("fabric");
                    tracing::warn!(error = %e, "fabric controller pass failed");
                }
                Err(e) => tracing::warn!(error = %e, "fabric controller task panicked"),
            }
        }
    });
}
