//! `neocloud firmware-baseline ...`: the firmware versions each system
//! model must run (provider only).

use crate::client;
use crate::commands::{parse_key, parse_name, print_done, to_value, Global};
use crate::output::{print_list, print_one, CliError};
use neocloud_common::Name;
use neocloud_types::{
    FirmwareBaseline, FirmwareBaselineCreate, FirmwareBaselineUpdate, FirmwareCompliance,
    FirmwareReset, ImageTransfer,
};
use std::collections::BTreeMap;

#[derive(clap::Args)]
pub struct FirmwareBaselineArgs {
    #[command(flatten)]
    g: Global,
    #[command(subcommand)]
    cmd: FirmwareBaselineCmd,
}

#[derive(clap::Subcommand)]
enum FirmwareBaselineCmd {
    /// List the baselines.
    List,
    /// Show one baseline.
    Get {
        /// Baseline name or id.
        #[arg(value_parser = parse_key)]
        baseline: String,
    },
    /// How each node of the baseline's model stands against it: the
    /// versions its BMC last reported, those that differ, updates under way.
    Nodes {
        /// Baseline name or id.
        #[arg(value_parser = parse_key)]
        baseline: String,
    },
    /// Set the versions a system model must run: a clean node of that model
    /// whose inspection finds another version fails, and every sanitization
    /// checks them.
    Create {
        #[arg(value_parser = parse_name)]
        name: Name,
        /// The system model as the BMC reports it, e.g. "DGX H100".
        #[arg(long)]
        model: String,
        /// A component (its id in the BMC's firmware inventory) and its
        /// version; repeat for each.
        #[arg(long = "component", value_name = "ID=VERSION", value_parser = parse_component, required = true)]
        components: Vec<(String, String)>,
        /// A component's image at its version (a URL its BMC fetches): a
        /// sanitization that finds the component at another version
        /// updates it from this image before the sanitizer boots; repeat
        /// for each.
        #[arg(long = "image", value_name = "ID=URL", value_parser = parse_image)]
        images: Vec<(String, String)>,
        /// The reset that activates a component's update, where its BMC's
        /// task does not say (HGX GPU firmware: an AC power cycle), e.g.
        /// HGX_FW_GPU_SXM_1=/redfish/v1/Chassis/HGX_Chassis_0/Actions/Chassis.Reset:PowerCycle;
        /// repeat for each.
        #[arg(long = "activation", value_name = "ID=ACTION:RESET_TYPE", value_parser = parse_activation)]
        activations: Vec<(String, FirmwareReset)>,
        /// How the images reach the BMCs: pull (the BMC fetches the URL,
        /// the default) or push (the control plane fetches it and uploads
        /// it to the BMC, for BMCs that cannot reach the image server).
        #[arg(long, value_parser = parse_transfer)]
        transfer: Option<ImageTransfer>,
        /// A component (one with an image) updated before the others, in
        /// the order given (e.g. the BMC's own firmware first); repeat for
        /// each. The rest follow by id.
        #[arg(long = "order", value_name = "ID")]
        order: Vec<String>,
        #[arg(long)]
        description: Option<String>,
        /// Retrying with the same key returns the first result instead of a second baseline.
        #[arg(long, value_name = "KEY")]
        idempotency_key: Option<String>,
    },
    /// Replace a baseline's versions (all of them) or its description.
    Update {
        /// Baseline name or id.
        #[arg(value_parser = parse_key)]
        baseline: String,
        /// The generation last read (the update is refused if it changed since).
        #[arg(long)]
        generation: i64,
        /// The new versions, each ID=VERSION; repeat for each.
        #[arg(long = "component", value_name = "ID=VERSION", value_parser = parse_component)]
        components: Vec<(String, String)>,
        /// The new images, each ID=URL (all of them); repeat for each.
        #[arg(long = "image", value_name = "ID=URL", value_parser = parse_image, conflicts_with = "no_images")]
        images: Vec<(String, String)>,
        /// Remove every image.
        #[arg(long)]
        no_images: bool,
        /// The new activations, each ID=ACTION:RESET_TYPE (all of them);
        /// repeat for each.
        #[arg(long = "activation", value_name = "ID=ACTION:RESET_TYPE", value_parser = parse_activation, conflicts_with = "no_activations")]
        activations: Vec<(String, FirmwareReset)>,
        /// Remove every activation.
        #[arg(long)]
        no_activations: bool,
        /// pull or push.
        #[arg(long, value_parser = parse_transfer)]
        transfer: Option<ImageTransfer>,
        /// The new update order, each ID (all of it); repeat for each.
        #[arg(long = "order", value_name = "ID", conflicts_with = "no_order")]
        order: Vec<String>,
        /// Update every component by id.
        #[arg(long)]
        no_order: bool,
        #[arg(long)]
        description: Option<String>,
    },
    /// Remove a baseline: the model's nodes are held to their own firmware
    /// baseline only.
    Delete {
        /// Baseline name or id.
        #[arg(value_parser = parse_key)]
        baseline: String,
    },
}

fn parse_component(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((id, v)) if !id.trim().is_empty() && !v.trim().is_empty() => {
            Ok((id.to_string(), v.to_string()))
        }
        _ => Err("expected ID=VERSION, e.g. HGX_FW_BMC_0=24.09".into()),
    }
}

fn parse_image(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((id, url)) if !id.trim().is_empty() && !url.trim().is_empty() => {
            Ok((id.to_string(), url.to_string()))
        }
        _ => Err("expected ID=URL, e.g. BIOS=https://fw.example/bios-2.1.bin".into()),
    }
}

fn parse_activation(s: &str) -> Result<(String, FirmwareReset), String> {
    let parsed = s.split_once('=').and_then(|(id, r)| {
        let (action, t) = r.rsplit_once(':')?;
        let ok = [id, action, t].iter().all(|x| !x.trim().is_empty());
        ok.then(|| (id.to_string(), FirmwareReset { action: action.into(), reset_type: t.into() }))
    });
    parsed.ok_or_else(|| {
        "expected ID=ACTION:RESET_TYPE, e.g. \
         HGX_FW_GPU_SXM_1=/redfish/v1/Chassis/HGX_Chassis_0/Actions/Chassis.Reset:PowerCycle"
            .into()
    })
}

fn parse_transfer(s: &str) -> Result<ImageTransfer, String> {
    ImageTransfer::parse(s).ok_or_else(|| "expected pull or push".into())
}

fn baseline_path(b: &str) -> String {
    format!("/v1/firmware-baselines/{}", client::seg(b))
}

pub fn firmware_baseline(a: FirmwareBaselineArgs) -> Result<(), CliError> {
    let c = a.g.client()?;
    let f = a.g.output;
    match a.cmd {
        FirmwareBaselineCmd::List => {
            print_list::<FirmwareBaseline>(f, &c.get("/v1/firmware-baselines", &[])?)
        }
        FirmwareBaselineCmd::Get { baseline } => {
            print_one::<FirmwareBaseline>(f, &c.get(&baseline_path(&baseline), &[])?)
        }
        FirmwareBaselineCmd::Nodes { baseline } => print_list::<FirmwareCompliance>(
            f,
            &c.get(&format!("{}/nodes", baseline_path(&baseline)), &[])?,
        ),
        FirmwareBaselineCmd::Create {
            name,
            model,
            components,
            images,
            activations,
            transfer,
            order,
            description,
            idempotency_key,
        } => {
            let body = to_value(&FirmwareBaselineCreate {
                name,
                model,
                components: components.into_iter().collect(),
                images: images.into_iter().collect(),
                activations: activations.into_iter().collect(),
                transfer: transfer.unwrap_or_default(),
                order,
                description: description.unwrap_or_default(),
            })?;
            let created =
                c.post("/v1/firmware-baselines", Some(&body), idempotency_key.as_deref())?;
            print_one::<FirmwareBaseline>(f, &created)
        }
        FirmwareBaselineCmd::Update {
            baseline,
            generation,
            components,
            images,
            no_images,
            activations,
            no_activations,
            transfer,
            order,
            no_order,
            description,
        } => {
            let components: Option<BTreeMap<String, String>> =
                (!components.is_empty()).then(|| components.into_iter().collect());
            let images: Option<BTreeMap<String, String>> =
                (no_images || !images.is_empty()).then(|| images.into_iter().collect());
            let activations: Option<BTreeMap<String, FirmwareReset>> = (no_activations
                || !activations.is_empty())
            .then(|| activations.into_iter().collect());
            let body = to_value(&FirmwareBaselineUpdate {
                generation,
                components,
                images,
                activations,
                transfer,
                order: (no_order || !order.is_empty()).then_some(order),
                description,
            })?;
            print_one::<FirmwareBaseline>(f, &c.patch(&baseline_path(&baseline), &body)?)
        }
        FirmwareBaselineCmd::Delete { baseline } => {
            c.delete(&baseline_path(&baseline))?;
            print_done(f, &format!("firmware baseline {baseline} deleted"));
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{parse_activation, parse_component, parse_image};

    #[test]
    fn a_component_is_an_id_and_a_version() {
        assert_eq!(
            parse_component("HGX_FW_BMC_0=24.09"),
            Ok(("HGX_FW_BMC_0".into(), "24.09".into()))
        );
        assert_eq!(parse_component("BIOS=1.2=rc1"), Ok(("BIOS".into(), "1.2=rc1".into())));
        assert!(parse_component("BIOS").is_err());
        assert!(parse_component("=1.2").is_err());
        assert!(parse_component("BIOS=").is_err());
        assert_eq!(
            parse_image("BIOS=https://fw/b.bin?v=2"),
            Ok(("BIOS".into(), "https://fw/b.bin?v=2".into()))
        );
        assert!(parse_image("https://fw/b.bin").is_err());
        let (id, r) = parse_activation(
            "HGX_FW_GPU_SXM_1=/redfish/v1/Chassis/HGX_Chassis_0/Actions/Chassis.Reset:PowerCycle",
        )
        .unwrap();
        assert_eq!(id, "HGX_FW_GPU_SXM_1");
        assert_eq!(r.action, "/redfish/v1/Chassis/HGX_Chassis_0/Actions/Chassis.Reset");
        assert_eq!(r.reset_type, "PowerCycle");
        assert!(parse_activation("GPU=/redfish/v1/Chassis/X/Actions/Chassis.Reset").is_err());
        assert!(parse_activation("GPU=:PowerCycle").is_err());
        assert!(parse_activation("/a:PowerCycle").is_err());
    }
}
