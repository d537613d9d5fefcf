//! The provider's firmware baselines: `/v1/firmware-baselines`, the
//! versions each system model must run. Provider only (the node policy's
//! resource). A clean node of a listed model whose inspection finds another
//! version of a listed component fails, and every sanitization checks them;
//! a change applies from the next inspection or sanitization. A component
//! given an image is updated from it by the sanitization that finds it at
//! another version; one given an activation is then activated by that
//! reset where the BMC does not say which.

use super::OpGroup;
use super::{schema, Call, Handler, Method, Op, Reply, Resp};
use neocloud_authz::{Action, Resource};
use neocloud_common::{Error, Result};
use neocloud_store::{firmware_baselines, Reader, Writer};
use neocloud_types::{
    check_text, FirmwareBaseline, FirmwareBaselineCreate, FirmwareBaselineUpdate,
    FirmwareCompliance, FirmwareDifference, FirmwareReset, List,
};
use std::collections::BTreeMap;

const API: OpGroup = OpGroup::global(Resource::Node, "firmware-baselines");

const ITEM: &str = "/v1/firmware-baselines/{firmware_baseline}";

pub(super) fn ops() -> Vec<Op> {
    vec![
        API.op(
            "firmware_baseline_list",
            Method::Get,
            "/v1/firmware-baselines",
            "The firmware versions each system model must run",
            Action::List,
            None,
            Resp::Json(200, schema::<List<FirmwareBaseline>>),
            Handler::Read(list),
        ),
        API.op(
            "firmware_baseline_create",
            Method::Post,
            "/v1/firmware-baselines",
            "Set the firmware versions a system model must run (one baseline per model)",
            Action::Create,
            Some(schema::<FirmwareBaselineCreate>),
            Resp::Json(201, schema::<FirmwareBaseline>),
            Handler::Write(create),
        ),
        API.op(
            "firmware_baseline_get",
            Method::Get,
            ITEM,
            "One firmware baseline",
            Action::Read,
            None,
            Resp::Json(200, schema::<FirmwareBaseline>),
            Handler::Read(get),
        ),
        API.op(
            "firmware_baseline_nodes",
            Method::Get,
            "/v1/firmware-baselines/{firmware_baseline}/nodes",
            "How each node of the baseline's model stands against it (a rollout's progress)",
            Action::Read,
            None,
            Resp::Json(200, schema::<List<FirmwareCompliance>>),
            Handler::Read(nodes_of),
        ),
        API.op(
            "firmware_baseline_update",
            Method::Patch,
            ITEM,
            "Replace a baseline's versions or description (from the next inspection or \
             sanitization)",
            Action::Update,
            Some(schema::<FirmwareBaselineUpdate>),
            Resp::Json(200, schema::<FirmwareBaseline>),
            Handler::Write(update),
        ),
        API.op(
            "firmware_baseline_delete",
            Method::Delete,
            ITEM,
            "Remove a baseline: the model's nodes are held to their own firmware baseline only",
            Action::Delete,
            None,
            Resp::Empty,
            Handler::Write(delete),
        ),
    ]
}

fn find(c: &Call<'_>, r: &mut dyn Reader) -> Result<FirmwareBaseline> {
    let key = c.key("firmware_baseline")?;
    firmware_baselines::lookup(r, &key)?
        .ok_or_else(|| Error::not_found("firmware baseline", key.to_string()))
}

fn list(_c: &Call<'_>, r: &mut dyn Reader) -> Result<Reply> {
    Reply::ok(&List { items: firmware_baselines::list(r)? })
}

fn get(c: &Call<'_>, r: &mut dyn Reader) -> Result<Reply> {
    Reply::ok(&find(c, r)?)
}

/// Each inspected node of the baseline's model: the versions its BMC last
/// reported against the baseline's, and whether updates are under way.
fn nodes_of(c: &Call<'_>, r: &mut dyn Reader) -> Result<Reply> {
    let b = find(c, r)?;
    let items = neocloud_store::nodes::inventories_of_model(r, &b.model)?
        .into_iter()
        .map(|m| {
            let inv = m.inventory;
            let differs: Vec<FirmwareDifference> = b
                .components
                .iter()
                .filter_map(|(id, want)| {
                    let have = inv.firmware.iter().find(|f| &f.id == id).map(|f| f.version.clone());
                    (have.as_ref() != Some(want)).then(|| FirmwareDifference {
                        component: id.clone(),
                        want: want.clone(),
                        have,
                        image: b.images.contains_key(id),
                    })
                })
                .collect();
            FirmwareCompliance {
                node_id: m.id,
                node: m.name,
                lifecycle: m.lifecycle,
                read_at: inv.firmware_read_at.unwrap_or(inv.inspected_at),
                compliant: differs.is_empty(),
                differs,
                updating: m.updating,
            }
        })
        .collect();
    Reply::ok(&List { items })
}

/// One line of printable text, 1 to 256 characters (as BMCs report
/// models, component ids and versions).
fn check_token(field: &str, v: &str) -> Result<()> {
    if v.trim().is_empty() || v.len() > 256 || v.chars().any(char::is_control) {
        return Err(Error::invalid_value(
            field,
            "must be 1 to 256 characters of one line, not only spaces",
        ));
    }
    Ok(())
}

fn check_components(components: &BTreeMap<String, String>) -> Result<()> {
    if components.is_empty() {
        return Err(Error::invalid_value("components", "must list at least one component"));
    }
    if components.len() > 256 {
        return Err(Error::invalid_value("components", "must list at most 256 components"));
    }
    for (id, version) in components {
        check_token("components", id)?;
        check_token(&format!("components.{id}"), version)?;
    }
    Ok(())
}

/// Each image belongs to a listed component and is a URL the BMC can
/// fetch, without credentials in it (every reader of the baseline, and of
/// the BMC's logs, would see them).
fn check_images(
    components: &BTreeMap<String, String>,
    images: &BTreeMap<String, String>,
) -> Result<()> {
    for (id, url) in images {
        let field = format!("images.{id}");
        if !components.contains_key(id) {
            return Err(Error::invalid_value(&field, "is not a component the baseline lists (list it in `components`, or drop its image)"));
        }
        super::images::check_url(&field, url)?;
    }
    Ok(())
}

/// Each activation belongs to a component with an image (it activates the
/// update from it) and names a reset action of the BMC's, with a one-word
/// `ResetType` (the driver's own rule: it sends no other).
fn check_activations(
    images: &BTreeMap<String, String>,
    activations: &BTreeMap<String, FirmwareReset>,
) -> Result<()> {
    use neocloud_redfish::RequiredReset;
    for (id, r) in activations {
        let field = format!("activations.{id}");
        if !images.contains_key(id) {
            return Err(Error::invalid_value(&field, "has no image: an activation applies to the update from the baseline's image (give it one in `images`, or drop the activation)"));
        }
        let action = RequiredReset { action: r.action.clone(), reset_type: "On".into() };
        if action.scope().is_none() {
            return Err(Error::invalid_value(
                format!("{field}.action"),
                "must be a reset action of the BMC: /redfish/v1/.../Actions/Chassis.Reset, Manager.Reset or ComputerSystem.Reset",
            ));
        }
        let reset = RequiredReset { action: r.action.clone(), reset_type: r.reset_type.clone() };
        if reset.scope().is_none() {
            return Err(Error::invalid_value(
                format!("{field}.reset_type"),
                "must be one word, as the BMC lists it (PowerCycle, ForceRestart, ...)",
            ));
        }
    }
    Ok(())
}

/// Each component of the update order has an image (the order is of
/// updates), once.
fn check_order(images: &BTreeMap<String, String>, order: &[String]) -> Result<()> {
    for (i, id) in order.iter().enumerate() {
        let field = format!("order[{i}]");
        if !images.contains_key(id) {
            return Err(Error::invalid_value(&field, format!("{id:?} has no image: the order is of updates (give it one in `images`, or drop it from the order)")));
        }
        if order[..i].contains(id) {
            return Err(Error::invalid_value(&field, format!("{id:?} is listed twice")));
        }
    }
    Ok(())
}

fn create(c: &Call<'_>, w: &mut dyn Writer) -> Result<Reply> {
    let p: FirmwareBaselineCreate = c.body()?;
    check_token("model", &p.model)?;
    check_components(&p.components)?;
    check_images(&p.components, &p.images)?;
    check_activations(&p.images, &p.activations)?;
    check_order(&p.images, &p.order)?;
    check_text("description", &Some(p.description.clone()))?;
    let b = firmware_baselines::create(w, &p)?;
    Reply::created(&b.id.clone(), &b)
}

fn update(c: &Call<'_>, w: &mut dyn Writer) -> Result<Reply> {
    let p: FirmwareBaselineUpdate = c.body()?;
    if let Some(components) = &p.components {
        check_components(components)?;
    }
    check_text("description", &p.description)?;
    let b = find(c, w)?;
    // Against what the baseline will list (a component dropped keeps no
    // image); at a stale generation the store refuses it as such first.
    if b.generation == p.generation {
        let images = p.images.as_ref().unwrap_or(&b.images);
        check_images(p.components.as_ref().unwrap_or(&b.components), images)?;
        check_activations(images, p.activations.as_ref().unwrap_or(&b.activations))?;
        check_order(images, p.order.as_ref().unwrap_or(&b.order))?;
    }
    Reply::ok(&firmware_baselines::update(w, &b.id, &p)?)
}

fn delete(c: &Call<'_>, w: &mut dyn Writer) -> Result<Reply> {
    let b = find(c, w)?;
    firmware_baselines::delete(w, &b.id)?;
    Reply::empty()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(r: Result<()>) -> String {
        match r {
            Err(Error::InvalidValue(e)) => e.field,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn components_name_what_is_wrong() {
        let mut c = BTreeMap::new();
        assert_eq!(field(check_components(&c)), "components");
        c.insert("BMC".to_string(), "".to_string());
        assert_eq!(field(check_components(&c)), "components.BMC");
        c.insert("BMC".to_string(), "1.2".to_string());
        assert!(check_components(&c).is_ok());
        c.insert("BIOS\n".to_string(), "1".to_string());
        assert_eq!(field(check_components(&c)), "components");
        assert_eq!(field(check_token("model", "  ")), "model");
        assert!(check_token("model", "DGX H100").is_ok());
    }

    #[test]
    fn images_name_what_is_wrong() {
        let c: BTreeMap<String, String> = [("BIOS".to_string(), "2.1".to_string())].into();
        let images = |id: &str, url: &str| -> BTreeMap<String, String> {
            [(id.to_string(), url.to_string())].into()
        };
        assert!(check_images(&c, &BTreeMap::new()).is_ok());
        assert!(check_images(&c, &images("BIOS", "https://fw.example/bios-2.1.bin")).is_ok());
        assert_eq!(field(check_images(&c, &images("BMC", "https://fw/x"))), "images.BMC");
        assert_eq!(field(check_images(&c, &images("BIOS", "ftp://fw/x"))), "images.BIOS");
        assert_eq!(field(check_images(&c, &images("BIOS", "https://fw/a b"))), "images.BIOS");
        assert_eq!(
            field(check_images(&c, &images("BIOS", "https://u:p@fw/bios.bin"))),
            "images.BIOS"
        );
        // An @ past the host is the path's.
        assert!(check_images(&c, &images("BIOS", "https://fw/v@2/bios.bin")).is_ok());
    }

    #[test]
    fn the_update_order_names_what_is_wrong() {
        let images: BTreeMap<String, String> = [
            ("BMC".to_string(), "https://fw/bmc.bin".to_string()),
            ("BIOS".to_string(), "https://fw/bios.bin".to_string()),
        ]
        .into();
        let order = |ids: &[&str]| ids.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(check_order(&images, &order(&[])).is_ok());
        assert!(check_order(&images, &order(&["BMC", "BIOS"])).is_ok());
        assert_eq!(field(check_order(&images, &order(&["BMC", "CPLD"]))), "order[1]");
        assert_eq!(field(check_order(&images, &order(&["BMC", "BIOS", "BMC"]))), "order[2]");
    }

    #[test]
    fn activations_name_what_is_wrong() {
        let images: BTreeMap<String, String> =
            [("HGX_FW_GPU".to_string(), "https://fw/gpu.bin".to_string())].into();
        let one = |id: &str, action: &str, t: &str| -> BTreeMap<String, FirmwareReset> {
            [(id.to_string(), FirmwareReset { action: action.into(), reset_type: t.into() })].into()
        };
        let chassis = "/redfish/v1/Chassis/HGX_Chassis_0/Actions/Chassis.Reset";
        assert!(check_activations(&images, &BTreeMap::new()).is_ok());
        assert!(check_activations(&images, &one("HGX_FW_GPU", chassis, "PowerCycle")).is_ok());
        assert_eq!(
            field(check_activations(&images, &one("BIOS", chassis, "PowerCycle"))),
            "activations.BIOS"
        );
        for action in [
            "/redfish/v1/UpdateService/Actions/UpdateService.SimpleUpdate",
            "https://bmc/redfish/v1/Chassis/X/Actions/Chassis.Reset",
            "/redfish/v1/Chassis/../Actions/Chassis.Reset",
            "",
        ] {
            assert_eq!(
                field(check_activations(&images, &one("HGX_FW_GPU", action, "PowerCycle"))),
                "activations.HGX_FW_GPU.action",
                "{action}"
            );
        }
        for t in ["", "Power Cycle", "PowerCycle;"] {
            assert_eq!(
                field(check_activations(&images, &one("HGX_FW_GPU", chassis, t))),
                "activations.HGX_FW_GPU.reset_type",
                "{t}"
            );
        }
    }
}
