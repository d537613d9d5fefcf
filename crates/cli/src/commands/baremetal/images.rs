//! `neocloud image ...`: the image catalog, tenant OS images and the
//! sanitizer.

use crate::client;
use crate::commands::{parse_key, parse_name, print_done, to_value, Global};
use crate::output::{print_list, print_one, CliError};
use neocloud_common::Name;
use neocloud_types::{Image, ImageCreate, ImagePurpose};

#[derive(clap::Args)]
pub struct ImageArgs {
    #[command(flatten)]
    g: Global,
    #[command(subcommand)]
    cmd: ImageCmd,
}

/// `--purpose`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum PurposeArg {
    /// An operating system tenants provision instances with.
    Tenant,
    /// The sanitizer (a ramdisk running neocloud-agent), booted to wipe
    /// and check a node between tenants.
    Sanitizer,
}

impl From<PurposeArg> for ImagePurpose {
    fn from(p: PurposeArg) -> ImagePurpose {
        match p {
            PurposeArg::Tenant => ImagePurpose::Tenant,
            PurposeArg::Sanitizer => ImagePurpose::Sanitizer,
        }
    }
}

#[derive(clap::Subcommand)]
enum ImageCmd {
    /// List the image catalog.
    List,
    /// Show one image.
    Get {
        /// Image name or id.
        #[arg(value_parser = parse_key)]
        image: String,
    },
    /// Add an image: a tenant OS, or (--purpose sanitizer) the ramdisk booted
    /// to wipe nodes between tenants. No instance can be created before a
    /// sanitizer is registered.
    Create {
        #[arg(value_parser = parse_name)]
        name: Name,
        /// http(s):// URL of the kernel.
        #[arg(long, value_name = "URL")]
        kernel: String,
        /// http(s):// URL of the initrd.
        #[arg(long, value_name = "URL")]
        initrd: String,
        /// http(s):// URL of the root filesystem or disk image the initrd installs.
        #[arg(long, value_name = "URL")]
        root: Option<String>,
        /// SHA-256 of the root image (64 hex digits), checked by the installer.
        #[arg(long, value_name = "HEX", requires = "root")]
        root_sha256: Option<String>,
        /// Extra kernel command line (`neocloud.*` and `ds=` are the boot service's).
        #[arg(long, value_name = "ARGS", allow_hyphen_values = true)]
        cmdline: Option<String>,
        /// What the image is booted for.
        #[arg(long, value_enum, default_value_t = PurposeArg::Tenant)]
        purpose: PurposeArg,
        #[arg(long)]
        description: Option<String>,
        /// Retrying with the same key returns the first result instead of a second image.
        #[arg(long, value_name = "KEY")]
        idempotency_key: Option<String>,
    },
    /// Remove an image no live instance uses.
    Delete {
        /// Image name or id.
        #[arg(value_parser = parse_key)]
        image: String,
    },
}

fn image_path(image: &str) -> String {
    format!("/v1/images/{}", client::seg(image))
}

pub fn image(a: ImageArgs) -> Result<(), CliError> {
    let c = a.g.client()?;
    let f = a.g.output;
    match a.cmd {
        ImageCmd::List => print_list::<Image>(f, &c.get("/v1/images", &[])?),
        ImageCmd::Get { image } => print_one::<Image>(f, &c.get(&image_path(&image), &[])?),
        ImageCmd::Create {
            name,
            kernel,
            initrd,
            root,
            root_sha256,
            cmdline,
            purpose,
            description,
            idempotency_key,
        } => {
            let body = to_value(&ImageCreate {
                name,
                purpose: purpose.into(),
                kernel_url: kernel,
                initrd_url: initrd,
                root_url: root,
                root_sha256,
                cmdline: cmdline.unwrap_or_default(),
                description: description.unwrap_or_default(),
            })?;
            print_one::<Image>(f, &c.post("/v1/images", Some(&body), idempotency_key.as_deref())?)
        }
        ImageCmd::Delete { image } => {
            c.delete(&image_path(&image))?;
            print_done(f, &format!("image {image} deleted"));
            Ok(())
        }
    }
}
