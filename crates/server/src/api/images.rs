//! The provider's image catalog: `/v1/images`. Every principal may read
//! it; only the provider changes it.

use super::OpGroup;
use super::{schema, Call, Handler, Method, Op, Reply, Resp};
use neocloud_authz::{Action, Resource};
use neocloud_common::{Error, Result};
use neocloud_store::{images, Reader, Writer};
use neocloud_types::{check_text, Image, ImageCreate, List};

const API: OpGroup = OpGroup::global(Resource::Image, "images");

pub(super) fn ops() -> Vec<Op> {
    vec![
        API.op(
            "image_list",
            Method::Get,
            "/v1/images",
            "The image catalog",
            Action::List,
            None,
            Resp::Json(200, schema::<List<Image>>),
            Handler::Read(list),
        ),
        API.op(
            "image_create",
            Method::Post,
            "/v1/images",
            "Add an image (a tenant OS, or the sanitizer booted between tenants)",
            Action::Create,
            Some(schema::<ImageCreate>),
            Resp::Json(201, schema::<Image>),
            Handler::Write(create),
        ),
        API.op(
            "image_get",
            Method::Get,
            "/v1/images/{image}",
            "One image",
            Action::Read,
            None,
            Resp::Json(200, schema::<Image>),
            Handler::Read(get),
        ),
        API.op(
            "image_delete",
            Method::Delete,
            "/v1/images/{image}",
            "Remove an image no live instance uses",
            Action::Delete,
            None,
            Resp::Empty,
            Handler::Write(delete),
        ),
    ]
}

fn find(c: &Call<'_>, r: &mut dyn Reader) -> Result<Image> {
    let key = c.key("image")?;
    images::lookup(r, &key)?.ok_or_else(|| Error::not_found("image", key.to_string()))
}

fn list(_c: &Call<'_>, r: &mut dyn Reader) -> Result<Reply> {
    Reply::ok(&List { items: images::list(r)? })
}

fn get(c: &Call<'_>, r: &mut dyn Reader) -> Result<Reply> {
    Reply::ok(&find(c, r)?)
}

/// An `http(s)://` URL a boot loader can fetch: no spaces or controls
/// (they would split the iPXE line), nothing iPXE would read as more than
/// a word of its own (below), no credentials (every reader of the
/// catalog, every tenant included, and the BMCs' logs would see them).
pub(super) fn check_url(field: &str, v: &str) -> Result<()> {
    if !(v.starts_with("http://") || v.starts_with("https://")) {
        return Err(Error::invalid_value(field, "must be an http:// or https:// URL"));
    }
    if v.len() > 2048 || v.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(Error::invalid_value(field, "must be at most 2048 characters, without spaces"));
    }
    let authority = v.split("://").nth(1).unwrap_or("").split(['/', '?', '#']).next();
    if authority.unwrap_or("").contains('@') {
        return Err(Error::invalid_value(field, "must not carry credentials"));
    }
    check_ipxe_words(field, v)
}

/// Text the boot service writes into an iPXE script's `kernel` line: iPXE
/// expands `${...}` (settings) before it splits the line, ends a command
/// at a word `||`, `&&` or `;` (and runs what follows), and takes a word
/// starting with `#` as the start of a comment (what follows, the node's
/// token included, would be lost). None of them is taken.
pub(super) fn check_ipxe_words(field: &str, v: &str) -> Result<()> {
    if v.contains("${") {
        return Err(Error::invalid_value(field, "must not contain ${ (iPXE expands it)"));
    }
    for word in v.split_whitespace() {
        if matches!(word, "||" | "&&" | ";") || word.starts_with('#') {
            return Err(Error::invalid_value(
                field,
                format!("must not contain the word {word:?} (iPXE reads it as a command separator or a comment)"),
            ));
        }
    }
    Ok(())
}

fn create(c: &Call<'_>, w: &mut dyn Writer) -> Result<Reply> {
    let p: ImageCreate = c.body()?;
    check_url("kernel_url", &p.kernel_url)?;
    check_url("initrd_url", &p.initrd_url)?;
    if let Some(u) = &p.root_url {
        check_url("root_url", u)?;
    }
    if let Some(h) = &p.root_sha256 {
        if h.len() != 64 || !h.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(Error::invalid_value("root_sha256", "must be 64 hex digits"));
        }
        if p.root_url.is_none() {
            return Err(Error::invalid_value("root_sha256", "given without root_url"));
        }
    }
    if p.cmdline.len() > 1024 || p.cmdline.chars().any(|c| c.is_control()) {
        return Err(Error::invalid_value("cmdline", "must be one line of at most 1024 characters"));
    }
    check_ipxe_words("cmdline", &p.cmdline)?;
    if p.cmdline.split_whitespace().any(|w| w.starts_with("neocloud.") || w.starts_with("ds=")) {
        return Err(Error::invalid_value(
            "cmdline",
            "neocloud.* and ds= are set by the boot service",
        ));
    }
    check_text("description", &Some(p.description.clone()))?;
    let img = images::create(w, &p)?;
    Reply::created(&img.id.clone(), &img)
}

fn delete(c: &Call<'_>, w: &mut dyn Writer) -> Result<Reply> {
    let img = find(c, w)?;
    images::delete(w, &img.id)?;
    Reply::empty()
}
