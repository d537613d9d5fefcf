//! Firmware baselines: one per model and per name, each refusal naming the
//! field that is taken, on both backends, including when a concurrent
//! create got past the check first (the database's unique violation is
//! read for the column it names).

mod common;

use common::*;
use neocloud_common::Error;
use neocloud_store::{firmware_baselines, vals, DbError};
use neocloud_types::FirmwareBaselineCreate;
use serde_json::json;

fn baseline(name: &str, model: &str) -> FirmwareBaselineCreate {
    serde_json::from_value(json!({"name": name, "model": model, "components": {"BMC": "1.0"}}))
        .unwrap()
}

fn taken_field(e: Error) -> String {
    match e {
        Error::AlreadyExists { field, .. } => field,
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_taken_model_or_name_is_named() {
    each_backend(|store, b| {
        store.write(|w| firmware_baselines::create(w, &baseline("dgx", "DGX H100"))).unwrap();
        let e = store
            .write(|w| firmware_baselines::create(w, &baseline("dgx-2", "DGX H100")))
            .unwrap_err();
        assert_eq!(taken_field(e), "model", "[{b}]");
        let e = store
            .write(|w| firmware_baselines::create(w, &baseline("dgx", "DGX B200")))
            .unwrap_err();
        assert_eq!(taken_field(e), "name", "[{b}]");
        // What a concurrent create that passed the check would meet: the
        // database's own refusal names the column (or its constraint).
        let raw = store
            .write(|w| {
                let r = w.execute(
                    "INSERT INTO firmware_baselines (id, name, model, components, description, generation, created_at, updated_at) VALUES (?, ?, ?, '{}', '', 1, 0, 0)",
                    vals!["x1", "other", "DGX H100"],
                );
                Ok(r)
            })
            .unwrap();
        match raw {
            Err(DbError::Unique(m)) => assert!(m.contains("model"), "[{b}] {m}"),
            other => panic!("[{b}] {other:?}"),
        }
        assert_eq!(store.read(firmware_baselines::list).unwrap().len(), 1, "[{b}]");
    });
}
