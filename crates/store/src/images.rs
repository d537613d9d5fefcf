//! The provider's image catalog.

use crate::backend::{Reader, Row, Writer};
use crate::{rfc, vals};
use neocloud_common::{new_id, time::now_micros, Error, NameOrId, Result};
use neocloud_types::{Image, ImageCreate, ImagePurpose};

const COLS: &str = "id, name, purpose, kernel_url, initrd_url, root_url, root_sha256, cmdline, description, generation, created_at, updated_at";

fn from_row(r: &Row) -> Result<Image> {
    let purpose = r.str(2)?;
    Ok(Image {
        id: r.str(0)?,
        name: r.str(1)?,
        purpose: ImagePurpose::parse(&purpose)
            .ok_or_else(|| Error::internal(format!("bad image purpose {purpose:?}")))?,
        kernel_url: r.str(3)?,
        initrd_url: r.str(4)?,
        root_url: r.opt_str(5)?,
        root_sha256: r.opt_str(6)?,
        cmdline: r.str(7)?,
        description: r.str(8)?,
        generation: r.i64(9)?,
        created_at: rfc(r.i64(10)?),
        updated_at: rfc(r.i64(11)?),
    })
}

pub fn lookup(r: &mut dyn Reader, key: &NameOrId) -> Result<Option<Image>> {
    let rows = match key {
        NameOrId::Id(id) => {
            r.query(&format!("SELECT {COLS} FROM images WHERE id = ?"), vals![id])?
        }
        NameOrId::Name(n) => {
            r.query(&format!("SELECT {COLS} FROM images WHERE name = ?"), vals![n.as_str()])?
        }
    };
    rows.first().map(from_row).transpose()
}

pub fn get(r: &mut dyn Reader, id: &str) -> Result<Image> {
    lookup(r, &NameOrId::Id(id.to_string()))?.ok_or_else(|| Error::not_found("image", id))
}

pub fn list(r: &mut dyn Reader) -> Result<Vec<Image>> {
    r.query(&format!("SELECT {COLS} FROM images ORDER BY name"), &[])?
        .iter()
        .map(from_row)
        .collect()
}

/// The sanitizer image (the newest, if the provider registered several).
pub fn sanitizer(r: &mut dyn Reader) -> Result<Option<Image>> {
    let rows = r.query(
        &format!("SELECT {COLS} FROM images WHERE purpose = 'sanitizer' ORDER BY created_at DESC, id LIMIT 1"),
        &[],
    )?;
    rows.first().map(from_row).transpose()
}

/// Creates an image (validated by the caller).
pub fn create(w: &mut dyn Writer, p: &ImageCreate) -> Result<Image> {
    let id = new_id();
    let now = now_micros();
    w.execute(
        &format!("INSERT INTO images ({COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?)"),
        vals![
            &id,
            p.name.as_str(),
            p.purpose.as_str(),
            p.kernel_url.as_str(),
            p.initrd_url.as_str(),
            &p.root_url,
            &p.root_sha256,
            p.cmdline.as_str(),
            p.description.as_str(),
            now,
            now
        ],
    )
    .map_err(|e| {
        e.unique_as(Error::AlreadyExists {
            kind: "image",
            field: "name".into(),
            value: p.name.to_string(),
        })
    })?;
    get(w, &id)
}

/// Deletes an image no instance still uses.
pub fn delete(w: &mut dyn Writer, id: &str) -> Result<()> {
    // Ordered with instance creation (which checks the catalog again once
    // it holds the same lock): the live-instance checks below see every
    // instance committed before, and none created after sees this image.
    crate::allocations::lock_placement(w)?;
    // An instance's rebuild asked for and not yet started names it too.
    let rows = w.query(
        "SELECT COUNT(*) FROM instances WHERE (image_id = ? OR rebuild_image_id = ?) \
         AND state <> 'released'",
        vals![id, id],
    )?;
    if rows.first().map(|r| r.i64(0)).transpose()?.unwrap_or(0) > 0 {
        return Err(Error::conflict("instances use this image: release them first"));
    }
    let img = get(w, id)?;
    if img.purpose == ImagePurpose::Sanitizer {
        let others = w.query(
            "SELECT COUNT(*) FROM images WHERE purpose = 'sanitizer' AND id <> ?",
            vals![id],
        )?;
        let live = w.query("SELECT COUNT(*) FROM instances WHERE state <> 'released'", &[])?;
        // A node sanitized before it joins the pool, or after a release
        // whose instance is gone, boots it too.
        let sanitizing = w.query(
            "SELECT COUNT(*) FROM nodes WHERE lifecycle_state IN ('releasing', 'sanitizing')",
            &[],
        )?;
        let count =
            |rows: Vec<Row>| rows.first().map(|r| r.i64(0)).transpose().map(|n| n.unwrap_or(0));
        if count(others)? == 0 && (count(live)? > 0 || count(sanitizing)? > 0) {
            return Err(Error::conflict(
                "the only sanitizer image: live instances and nodes being sanitized need it",
            ));
        }
    }
    if w.execute("DELETE FROM images WHERE id = ?", vals![id])? == 0 {
        return Err(Error::not_found("image", id));
    }
    Ok(())
}
