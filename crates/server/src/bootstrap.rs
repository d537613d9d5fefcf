//! First start: on an empty store, create the provider admin and its token,
//! store only the token's hash and hand the secret over in
//! `<data-dir>/admin.token` (mode 0600).

use crate::auth;
use neocloud_authz::Role;
use neocloud_common::{time::now_micros, Error, Name, Result};
use neocloud_store::{meta, tokens, users, Store};
use neocloud_types::UserCreate;
use std::io::Write;
use std::path::{Path, PathBuf};

pub const TOKEN_FILE: &str = "admin.token";
const BOOTSTRAPPED: &str = "bootstrapped_at";

/// Creates the admin on an empty store; returns the token file's path when
/// it did.
pub fn bootstrap(store: &Store, data_dir: &Path) -> Result<Option<PathBuf>> {
    if store.read(|r| meta::get(r, BOOTSTRAPPED))?.is_some() {
        return Ok(None);
    }
    std::fs::create_dir_all(data_dir)
        .map_err(|e| Error::internal(format!("create data dir {}: {e}", data_dir.display())))?;
    let secret = auth::new_secret()?;
    let path = data_dir.join(TOKEN_FILE);
    let tmp = data_dir.join(format!("{TOKEN_FILE}.tmp"));
    write_private(&tmp, &format!("{secret}\n"))?;
    let res = store.write(|w| {
        // Another replica may have bootstrapped meanwhile: the meta insert
        // is the arbiter.
        if meta::get(w, BOOTSTRAPPED)?.is_some() {
            return Ok(false);
        }
        meta::insert(w, BOOTSTRAPPED, &now_micros().to_string())?;
        let admin = users::create(
            w,
            None,
            &UserCreate {
                name: Name::parse("admin").map_err(Error::internal)?,
                display_name: Some("Provider administrator".into()),
                email: None,
                role: Some(Role::ProviderAdmin),
            },
        )?;
        tokens::create(
            w,
            &tokens::NewToken {
                user_id: &admin.id,
                tenant_id: None,
                name: "bootstrap",
                secret_hash: &auth::hash_secret(&secret),
                prefix: &auth::shown_prefix(&secret),
                expires_at: None,
            },
        )?;
        Ok(true)
    });
    match res {
        Ok(true) => {
            std::fs::rename(&tmp, &path)
                .map_err(|e| Error::internal(format!("rename {}: {e}", tmp.display())))?;
            Ok(Some(path))
        }
        Ok(false) => {
            let _ = std::fs::remove_file(&tmp);
            Ok(None)
        }
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(e)
        }
    }
}

fn write_private(path: &Path, content: &str) -> Result<()> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f =
        opts.open(path).map_err(|e| Error::internal(format!("create {}: {e}", path.display())))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        f.set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(|e| Error::internal(format!("chmod {}: {e}", path.display())))?;
    }
    f.write_all(content.as_bytes())
        .and_then(|()| f.sync_all())
        .map_err(|e| Error::internal(format!("write {}: {e}", path.display())))
}
