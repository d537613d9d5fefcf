#!/usr/bin/env python3
"""Writes the Redfish mockups served by `sushy-static` in the redfish crate's tests.

    python3 crates/redfish/tests/mockups/generate.py

Each resource `/redfish/v1/<path>` becomes `<mockup>/<path>/index.json` (the service
root is `<mockup>/index.json`). The values are made up but shaped like real BMCs:

- dgx-h100: an NVIDIA DGX H100 BMC (accounts admin, neocloud, monitor and a
  disabled service; Secure Boot on). Host system `DGX` beside the GPU baseboard
  system `HGX_Baseboard_0` (8 x H100 80GB, GPU_SXM_1..8, MIG enabled on GPU_SXM_8
  only), managers `BMC` (virtual media CD1, USB1) and `HGX_BMC_0`.
- generic-2cpu: a Dell-like 2-socket server without GPUs, system and chassis
  `System.Embedded.1`, manager `iDRAC.Embedded.1` (account slots 1-4, only
  `root` used; Secure Boot off).

Everything is deterministic; rerunning rewrites the same files. Edit this script,
not the JSON, then rerun it (harness_smoke.rs checks that every link resolves).
"""

import json
import os
import shutil
import sys

ROOT = "/redfish/v1"
HERE = os.path.dirname(os.path.abspath(__file__))


class Mockup:
    def __init__(self, name):
        self.name = name
        self.dir = os.path.join(HERE, name)
        self.files = {}

    def add(self, path, body):
        assert path.startswith(ROOT), path
        assert path not in self.files, path
        doc = {"@odata.id": path}
        doc.update(body)
        self.files[path] = doc
        return doc

    def collection(self, path, odata_type, name, members):
        return self.add(path, {
            "@odata.type": f"#{odata_type}.{odata_type}",
            "Name": name,
            "Members@odata.count": len(members),
            "Members": [link(m) for m in members],
        })

    def write(self):
        if os.path.isdir(self.dir):
            shutil.rmtree(self.dir)
        for path, doc in sorted(self.files.items()):
            rel = path[len(ROOT):].lstrip("/")
            d = os.path.join(self.dir, rel)
            os.makedirs(d, exist_ok=True)
            with open(os.path.join(d, "index.json"), "w") as f:
                json.dump(doc, f, indent=2)
                f.write("\n")
        print(f"{self.name}: {len(self.files)} resources", file=sys.stderr)


def link(path):
    return {"@odata.id": path}


def ok():
    return {"State": "Enabled", "Health": "OK"}


def service_root(m, vendor, uuid, product):
    m.add(ROOT, {
        "@odata.type": "#ServiceRoot.v1_15_0.ServiceRoot",
        "Id": "RootService",
        "Name": "Root Service",
        "RedfishVersion": "1.17.0",
        "UUID": uuid,
        "Vendor": vendor,
        "Product": product,
        "Systems": link(f"{ROOT}/Systems"),
        "Chassis": link(f"{ROOT}/Chassis"),
        "Managers": link(f"{ROOT}/Managers"),
        "SessionService": link(f"{ROOT}/SessionService"),
        "UpdateService": link(f"{ROOT}/UpdateService"),
        "AccountService": link(f"{ROOT}/AccountService"),
        "Links": {"Sessions": link(f"{ROOT}/SessionService/Sessions")},
    })
    m.add(f"{ROOT}/SessionService", {
        "@odata.type": "#SessionService.v1_1_8.SessionService",
        "Id": "SessionService",
        "Name": "Session Service",
        "ServiceEnabled": True,
        "SessionTimeout": 1800,
        "Status": ok(),
        "Sessions": link(f"{ROOT}/SessionService/Sessions"),
    })
    # sushy-static serves this collection; a POST to it answers 204 (no token).
    m.collection(f"{ROOT}/SessionService/Sessions", "SessionCollection", "Session Collection", [])


def account_service(m, accounts):
    """The BMC's local accounts: (slot id, user name, role, enabled). Vendors
    with fixed slots list the unused ones with an empty user name."""
    m.add(f"{ROOT}/AccountService", {
        "@odata.type": "#AccountService.v1_12_0.AccountService",
        "Id": "AccountService",
        "Name": "Account Service",
        "ServiceEnabled": True,
        "Status": ok(),
        "Accounts": link(f"{ROOT}/AccountService/Accounts"),
    })
    paths = []
    for aid, user, role, enabled in accounts:
        path = f"{ROOT}/AccountService/Accounts/{aid}"
        paths.append(path)
        m.add(path, {
            "@odata.type": "#ManagerAccount.v1_10_0.ManagerAccount",
            "Id": aid,
            "Name": "User Account",
            "UserName": user,
            "RoleId": role,
            "Enabled": enabled,
            "Locked": False,
            "AccountTypes": ["Redfish", "WebUI", "IPMI"],
        })
    m.collection(f"{ROOT}/AccountService/Accounts", "ManagerAccountCollection",
                 "Accounts Collection", paths)


def secure_boot(m, sys_path, enable, mode):
    m.add(f"{sys_path}/SecureBoot", {
        "@odata.type": "#SecureBoot.v1_1_0.SecureBoot",
        "Id": "SecureBoot",
        "Name": "UEFI Secure Boot",
        "SecureBootEnable": enable,
        "SecureBootCurrentBoot": "Enabled" if enable else "Disabled",
        "SecureBootMode": mode,
    })


def bios(m, sys_path, settings, attrs, apply_times=None):
    """The BIOS attributes in effect and the settings resource that holds
    pending ones (empty: nothing staged)."""
    redfish_settings = {
        "@odata.type": "#Settings.v1_3_5.Settings",
        "SettingsObject": link(f"{sys_path}/Bios/{settings}"),
    }
    if apply_times:
        redfish_settings["SupportedApplyTimes"] = apply_times
    m.add(f"{sys_path}/Bios", {
        "@odata.type": "#Bios.v1_2_0.Bios",
        "Id": "Bios",
        "Name": "BIOS Configuration Current Settings",
        "AttributeRegistry": "BiosAttributeRegistry.v1_0_0",
        "Attributes": attrs,
        "@Redfish.Settings": redfish_settings,
    })
    m.add(f"{sys_path}/Bios/{settings}", {
        "@odata.type": "#Bios.v1_2_0.Bios",
        "Id": settings,
        "Name": "BIOS Configuration Pending Settings",
        "Attributes": {},
    })


def legacy_power_thermal(m, ch, psus, fans):
    """The chassis' power supplies and fans in the older `Power` and
    `Thermal` resources (members inline), as most BMCs still serve them."""
    m.add(f"{ch}/Power", {
        "@odata.type": "#Power.v1_7_1.Power",
        "Id": "Power", "Name": "Power",
        "PowerSupplies": [{
            "@odata.id": f"{ch}/Power#/PowerSupplies/{i}",
            "MemberId": str(i), "Name": name, "PowerCapacityWatts": 3300,
            "Status": ok(),
        } for i, name in enumerate(psus)],
    })
    m.add(f"{ch}/Thermal", {
        "@odata.type": "#Thermal.v1_7_1.Thermal",
        "Id": "Thermal", "Name": "Thermal",
        "Fans": [{
            "@odata.id": f"{ch}/Thermal#/Fans/{i}",
            "MemberId": str(i), "Name": name, "Reading": 9800, "ReadingUnits": "RPM",
            "Status": ok(),
        } for i, name in enumerate(fans)],
        "Temperatures": [{
            "@odata.id": f"{ch}/Thermal#/Temperatures/0",
            "MemberId": "0", "Name": "Inlet Temp", "ReadingCelsius": 24,
            "Status": ok(),
        }],
    })


def power_thermal_subsystems(m, ch, psus, fans):
    """The chassis' power supplies and fans as `PowerSubsystem` and
    `ThermalSubsystem` (DSP0268 2020.4 and later), one resource each."""
    def subsystem(sub, sub_type, sub_name, key, coll_type, coll_name, part_type, parts, extra):
        m.add(f"{ch}/{sub}", {
            "@odata.type": f"#{sub_type}", "Id": sub, "Name": sub_name, "Status": ok(),
            key: link(f"{ch}/{sub}/{key}"),
        })
        m.collection(f"{ch}/{sub}/{key}", coll_type, coll_name,
                     [f"{ch}/{sub}/{key}/{p}" for p in parts])
        for p in parts:
            m.add(f"{ch}/{sub}/{key}/{p}",
                  {"@odata.type": f"#{part_type}", "Id": p, "Name": p, **extra, "Status": ok()})

    subsystem("PowerSubsystem", "PowerSubsystem.v1_1_0.PowerSubsystem", "Power Subsystem",
              "PowerSupplies", "PowerSupplyCollection", "Power Supplies",
              "PowerSupply.v1_5_0.PowerSupply", psus, {"PowerCapacityWatts": 1400})
    subsystem("ThermalSubsystem", "ThermalSubsystem.v1_2_0.ThermalSubsystem", "Thermal Subsystem",
              "Fans", "FanCollection", "Fans", "Fan.v1_4_0.Fan", fans, {})


def sel_log(m, sys_path, entries):
    """The system's event log (DSP0268 LogService, its entries expanded in
    the collection as BMCs serve them, and each at its own path too)."""
    logs = f"{sys_path}/LogServices"
    sel = f"{logs}/SEL"
    m.collection(logs, "LogServiceCollection", "Log Services", [sel])
    m.add(sel, {
        "@odata.type": "#LogService.v1_3_0.LogService",
        "Id": "SEL", "Name": "System Event Log", "LogEntryType": "SEL",
        "OverWritePolicy": "WrapsWhenFull", "ServiceEnabled": True,
        "Entries": link(f"{sel}/Entries"),
        "Actions": {"#LogService.ClearLog": {"target": f"{sel}/Actions/LogService.ClearLog"}},
    })
    docs = []
    for i, (created, severity, message) in enumerate(entries, start=1):
        docs.append(m.add(f"{sel}/Entries/{i}", {
            "@odata.type": "#LogEntry.v1_15_0.LogEntry",
            "Id": str(i), "Name": f"Log Entry {i}", "EntryType": "SEL",
            "Created": created, "Severity": severity, "Message": message,
        }))
    m.add(f"{sel}/Entries", {
        "@odata.type": "#LogEntryCollection.LogEntryCollection",
        "Name": "System Event Log Entries",
        "Members@odata.count": len(docs),
        "Members": [dict(d) for d in docs],
    })


def computer_system(m, sid, body):
    path = f"{ROOT}/Systems/{sid}"
    doc = {
        "@odata.type": "#ComputerSystem.v1_20_0.ComputerSystem",
        "Id": sid,
        "Name": sid,
        "SystemType": "Physical",
    }
    doc.update(body)
    return m.add(path, doc)


def reset_action(target, types):
    return {
        "#ComputerSystem.Reset": {
            "target": target,
            "ResetType@Redfish.AllowableValues": types,
        }
    }


def firmware(m, fid, name, version, related, updateable=True, manufacturer=None):
    body = {
        "@odata.type": "#SoftwareInventory.v1_10_0.SoftwareInventory",
        "Id": fid,
        "Name": name,
        "Version": version,
        "Updateable": updateable,
        "Status": ok(),
        "RelatedItem": [link(r) for r in related],
        "RelatedItem@odata.count": len(related),
    }
    if manufacturer:
        body["Manufacturer"] = manufacturer
    m.add(f"{ROOT}/UpdateService/FirmwareInventory/{fid}", body)


def update_service(m, inventory_ids):
    m.add(f"{ROOT}/UpdateService", {
        "@odata.type": "#UpdateService.v1_11_0.UpdateService",
        "Id": "UpdateService",
        "Name": "Update Service",
        "ServiceEnabled": True,
        "Status": ok(),
        "HttpPushUri": f"{ROOT}/UpdateService/update",
        "MultipartHttpPushUri": f"{ROOT}/UpdateService/update-multipart",
        "FirmwareInventory": link(f"{ROOT}/UpdateService/FirmwareInventory"),
        "Actions": {
            "#UpdateService.SimpleUpdate": {
                "target": f"{ROOT}/UpdateService/Actions/UpdateService.SimpleUpdate",
                "TransferProtocol@Redfish.AllowableValues": ["HTTP", "HTTPS"],
            }
        },
    })
    m.collection(
        f"{ROOT}/UpdateService/FirmwareInventory",
        "SoftwareInventoryCollection",
        "Firmware Inventory Collection",
        [f"{ROOT}/UpdateService/FirmwareInventory/{i}" for i in inventory_ids],
    )


def virtual_media(m, base, slot, media_types, name):
    path = f"{base}/{slot}"
    m.add(path, {
        "@odata.type": "#VirtualMedia.v1_6_2.VirtualMedia",
        "Id": slot,
        "Name": name,
        "MediaTypes": media_types,
        "ConnectedVia": "NotConnected",
        "Image": None,
        "ImageName": None,
        "Inserted": False,
        "WriteProtected": True,
        "TransferMethod": "Stream",
        "TransferProtocolType": None,
        "Actions": {
            "#VirtualMedia.InsertMedia": {
                "target": f"{path}/Actions/VirtualMedia.InsertMedia",
                "TransferProtocolType@Redfish.AllowableValues": ["HTTP", "HTTPS", "NFS", "CIFS"],
            },
            "#VirtualMedia.EjectMedia": {"target": f"{path}/Actions/VirtualMedia.EjectMedia"},
        },
    })
    return path


def pcie_function(m, dev_path, fid, vendor, device, sub_vendor, sub_id, class_code,
                  device_class, links=None):
    body = {
        "@odata.type": "#PCIeFunction.v1_5_0.PCIeFunction",
        "Id": str(fid),
        "Name": f"PCIe Function {fid}",
        "FunctionId": fid,
        "FunctionType": "Physical",
        "DeviceClass": device_class,
        "VendorId": vendor,
        "DeviceId": device,
        "SubsystemVendorId": sub_vendor,
        "SubsystemId": sub_id,
        "ClassCode": class_code,
        "Status": ok(),
        "Links": {"PCIeDevice": link(dev_path)},
    }
    if links:
        body["Links"].update(links)
    return m.add(f"{dev_path}/PCIeFunctions/{fid}", body)


def pcie_device(m, path, body, functions):
    doc = {
        "@odata.type": "#PCIeDevice.v1_14_0.PCIeDevice",
        "Id": path.rsplit("/", 1)[1],
        "Status": ok(),
        "PCIeFunctions": link(f"{path}/PCIeFunctions"),
    }
    doc.update(body)
    m.add(path, doc)
    m.collection(f"{path}/PCIeFunctions", "PCIeFunctionCollection", "PCIe Function Collection",
                 [f"{path}/PCIeFunctions/{f}" for f in functions])


# --------------------------------------------------------------------------- DGX H100


def dgx_h100():
    m = Mockup("dgx-h100")
    host = "DGX"
    hgx = "HGX_Baseboard_0"
    sys_path = f"{ROOT}/Systems/{host}"
    secure_boot(m, sys_path, True, "DeployedMode")
    bios(m, sys_path, "SD", {
        "BootMode": "UEFI",
        "IntelVTforDirectedIO": "Enabled",
        "SRIOVEnable": "Enabled",
        "ProcessorHyperThreading": "Enabled",
        "PCIeACSControl": True,
        "NumaNodesPerSocket": 1,
    })
    hgx_path = f"{ROOT}/Systems/{hgx}"
    service_root(m, "NVIDIA", "3a6e8a4b-1e1f-4b7e-9a3c-5d2f1c0b7e01", "DGX H100")
    account_service(m, [("admin", "admin", "Administrator", True),
                        ("neocloud", "neocloud", "Administrator", True),
                        ("monitor", "monitor", "ReadOnly", True),
                        ("service", "service", "Operator", False)])
    m.collection(f"{ROOT}/Systems", "ComputerSystemCollection", "Computer System Collection",
                 [sys_path, hgx_path])

    # Host CPUs: 2 x Xeon Platinum 8480C (56 cores, 112 threads each).
    cpus = ["CPU_0", "CPU_1"]
    for i, cid in enumerate(cpus):
        m.add(f"{sys_path}/Processors/{cid}", {
            "@odata.type": "#Processor.v1_20_0.Processor",
            "Id": cid,
            "Name": f"Processor {i}",
            "ProcessorType": "CPU",
            "ProcessorArchitecture": "x86",
            "InstructionSet": "x86-64",
            "Manufacturer": "Intel(R) Corporation",
            "Model": "Intel(R) Xeon(R) Platinum 8480C",
            "Socket": f"CPU{i}",
            "TotalCores": 56,
            "TotalEnabledCores": 56,
            "TotalThreads": 112,
            "MaxSpeedMHz": 3800,
            "OperatingSpeedMHz": 2000,
            "SerialNumber": f"6F3A1C2D9E7B{i:04X}",
            "ProcessorId": {"VendorId": "GenuineIntel", "EffectiveFamily": "0x6",
                            "EffectiveModel": "0x8F", "Step": "0x8"},
            "Status": ok(),
        })
    m.collection(f"{sys_path}/Processors", "ProcessorCollection", "Processors Collection",
                 [f"{sys_path}/Processors/{c}" for c in cpus])

    # Host memory: 32 x 64 GiB DDR5-4800 = 2048 GiB.
    dimms = []
    for cpu in range(2):
        for ch in "ABCDEFGH":
            for slot in (1, 2):
                did = f"DIMM_{cpu}_{ch}{slot}"
                n = len(dimms)
                dimms.append(did)
                m.add(f"{sys_path}/Memory/{did}", {
                    "@odata.type": "#Memory.v1_17_0.Memory",
                    "Id": did,
                    "Name": did,
                    "MemoryType": "DRAM",
                    "MemoryDeviceType": "DDR5",
                    "BaseModuleType": "RDIMM",
                    "CapacityMiB": 65536,
                    "OperatingSpeedMhz": 4800,
                    "DataWidthBits": 64,
                    "BusWidthBits": 72,
                    "ErrorCorrection": "MultiBitECC",
                    "Manufacturer": "Samsung",
                    "PartNumber": "M321R8GA0BB0-CQKZJ",
                    "SerialNumber": f"S{0x80E1A000 + n:08X}",
                    "DeviceLocator": f"CPU{cpu}_DIMM_{ch}{slot}",
                    "Status": ok(),
                })
    m.collection(f"{sys_path}/Memory", "MemoryCollection", "Memory Module Collection",
                 [f"{sys_path}/Memory/{d}" for d in dimms])

    # Host Ethernet: the on-board management port and the two dual-port ConnectX-7
    # storage/in-band NICs (the eight compute ConnectX-7 are InfiniBand: no MAC).
    eths = [
        ("EthernetInterface0", "5c:ff:35:0d:7a:10", 10000, "LinkUp", "Intel X550 management port"),
        ("EthernetInterface1", "94:6d:ae:3c:51:20", 200000, "LinkUp", "ConnectX-7 storage NIC 0 port 0"),
        ("EthernetInterface2", "94:6d:ae:3c:51:21", 200000, "LinkUp", "ConnectX-7 storage NIC 0 port 1"),
        ("EthernetInterface3", "94:6d:ae:3c:52:30", 200000, "LinkDown", "ConnectX-7 storage NIC 1 port 0"),
        ("EthernetInterface4", "94:6d:ae:3c:52:31", 200000, "LinkDown", "ConnectX-7 storage NIC 1 port 1"),
    ]
    for eid, mac, speed, linkst, desc in eths:
        m.add(f"{sys_path}/EthernetInterfaces/{eid}", {
            "@odata.type": "#EthernetInterface.v1_9_0.EthernetInterface",
            "Id": eid,
            "Name": eid,
            "Description": desc,
            "MACAddress": mac.upper(),
            "PermanentMACAddress": mac.upper(),
            "SpeedMbps": speed,
            "LinkStatus": linkst,
            "InterfaceEnabled": True,
            "Status": ok(),
        })
    m.collection(f"{sys_path}/EthernetInterfaces", "EthernetInterfaceCollection",
                 "Ethernet Network Interface Collection",
                 [f"{sys_path}/EthernetInterfaces/{e[0]}" for e in eths])

    # Host storage: 2 x 1.92 TB M.2 (OS) + 8 x 3.84 TB U.2 (data), all NVMe.
    st = f"{sys_path}/Storage/NVMe_0"
    drives = []
    for i in range(2):
        drives.append((f"M2_{i}", 1920383410176, "SAMSUNG MZ1L21T9HCLS-00A07", f"S665NE0T{400100 + i}"))
    for i in range(8):
        drives.append((f"U2_{i}", 3840755982336, "SAMSUNG MZQL23T8HCLS-00A07", f"S64HNE0T{500200 + i}"))
    for did, cap, model, serial in drives:
        m.add(f"{st}/Drives/{did}", {
            "@odata.type": "#Drive.v1_17_0.Drive",
            "Id": did,
            "Name": f"NVMe drive {did}",
            "MediaType": "SSD",
            "Protocol": "NVMe",
            "CapacityBytes": cap,
            "Manufacturer": "Samsung",
            "Model": model,
            "SerialNumber": serial,
            "Revision": "GDC7302Q",
            "Status": ok(),
            "Links": {"Storage": link(st)},
        })
    m.add(st, {
        "@odata.type": "#Storage.v1_15_0.Storage",
        "Id": "NVMe_0",
        "Name": "NVMe Storage",
        "Status": ok(),
        "Drives@odata.count": len(drives),
        "Drives": [link(f"{st}/Drives/{d[0]}") for d in drives],
    })
    m.collection(f"{sys_path}/Storage", "StorageCollection", "Storage Collection", [st])

    # Host PCIe devices live under the DGX chassis; the system links them.
    ch_dgx = f"{ROOT}/Chassis/{host}"
    host_pcie = []
    for i in range(8):
        dev = f"{ch_dgx}/PCIeDevices/IB_CX7_{i}"
        host_pcie.append(dev)
        pcie_device(m, dev, {
            "Name": f"ConnectX-7 InfiniBand NIC {i}",
            "Manufacturer": "NVIDIA",
            "Model": "ConnectX-7 VPI 400Gb/s OSFP",
            "PartNumber": "MCX75310AAS-NEAT",
            "SerialNumber": f"MT2330X0{1000 + i}",
            "FirmwareVersion": "28.39.1002",
            "DeviceType": "SingleFunction",
            "Slot": {"Location": {"PartLocation": {"ServiceLabel": f"OSFP {i}", "LocationType": "Slot"}}},
            "PCIeInterface": {"PCIeType": "Gen5", "MaxPCIeType": "Gen5", "LanesInUse": 16, "MaxLanes": 16},
            "Oem": {"Nvidia": {"PortGUID": f"0xa088c2030045{0x6a00 + i:04x}"}},
        }, [0])
        pcie_function(m, dev, 0, "0x15B3", "0x1021", "0x15B3", "0x0041", "0x020700",
                      "NetworkController")
    for n in range(2):
        dev = f"{ch_dgx}/PCIeDevices/ETH_CX7_{n}"
        host_pcie.append(dev)
        pcie_device(m, dev, {
            "Name": f"ConnectX-7 Ethernet NIC {n}",
            "Manufacturer": "NVIDIA",
            "Model": "ConnectX-7 2x200GbE QSFP112",
            "PartNumber": "MCX755106AS-HEAT",
            "SerialNumber": f"MT2330X0{2000 + n}",
            "FirmwareVersion": "28.39.1002",
            "DeviceType": "MultiFunction",
            "PCIeInterface": {"PCIeType": "Gen5", "MaxPCIeType": "Gen5", "LanesInUse": 16, "MaxLanes": 16},
        }, [0, 1])
        for f in range(2):
            eth = f"{sys_path}/EthernetInterfaces/EthernetInterface{1 + 2 * n + f}"
            pcie_function(m, dev, f, "0x15B3", "0x1021", "0x15B3", "0x0022", "0x020000",
                          "NetworkController", {"EthernetInterfaces": [link(eth)]})
    m.collection(f"{ch_dgx}/PCIeDevices", "PCIeDeviceCollection", "PCIe Device Collection", host_pcie)

    # Boot options (UEFI HTTP on the management port, then the OS disk).
    nic_path = "PciRoot(0x0)/Pci(0x1C,0x0)/Pci(0x0,0x0)/MAC(5CFF350D7A10,0x1)/IPv4(0.0.0.0)"
    boot_opts = [
        ("000A", "UEFI HTTP IPv4 Intel X550 - 5C:FF:35:0D:7A:10", "UefiHttp", nic_path + "/Uri()"),
        ("000B", "UEFI PXE IPv4 Intel X550 - 5C:FF:35:0D:7A:10", "Pxe", nic_path),
        ("0030", "UEFI OS", "Hdd",
         "PciRoot(0x0)/Pci(0x3,0x0)/Pci(0x0,0x0)/NVMe(0x1,00-A0-75-00-00-00-00-01)/HD(1,GPT)"),
    ]
    for bid, disp, alias, device_path in boot_opts:
        m.add(f"{sys_path}/BootOptions/{bid}", {
            "@odata.type": "#BootOption.v1_0_4.BootOption",
            "Id": bid,
            "Name": f"Boot{bid}",
            "BootOptionReference": f"Boot{bid}",
            "DisplayName": disp,
            "Alias": alias,
            "UefiDevicePath": device_path,
            "BootOptionEnabled": True,
        })
    m.collection(f"{sys_path}/BootOptions", "BootOptionCollection", "Boot Option Collection",
                 [f"{sys_path}/BootOptions/{b[0]}" for b in boot_opts])

    computer_system(m, host, {
        "Name": "DGX H100",
        "Description": "DGX H100 host",
        "Manufacturer": "NVIDIA",
        "Model": "DGXH100",
        "SKU": "DGXH-G640F+P2CMI36",
        "PartNumber": "965-24387-0002-000",
        "SerialNumber": "1660522000123",
        "UUID": "0e3a7b2c-54d1-4f3e-9b8a-2c6d1f0e9a11",
        "HostName": "dgx-h100-0123",
        "BiosVersion": "01.05.03",
        "PowerState": "On",
        "Status": {"State": "Enabled", "Health": "OK", "HealthRollup": "OK"},
        "ProcessorSummary": {
            "Count": 2,
            "CoreCount": 112,
            "LogicalProcessorCount": 224,
            "Model": "Intel(R) Xeon(R) Platinum 8480C",
            "Status": ok(),
        },
        "MemorySummary": {"TotalSystemMemoryGiB": 2048, "MemoryMirroring": "None", "Status": ok()},
        "TrustedModules": [{"InterfaceType": "TPM2_0", "FirmwareVersion": "7.2.2.0",
                            "Status": {"State": "Enabled", "Health": "OK"}}],
        "Boot": {
            "BootSourceOverrideEnabled": "Disabled",
            "BootSourceOverrideTarget": "None",
            "BootSourceOverrideMode": "UEFI",
            "BootSourceOverrideTarget@Redfish.AllowableValues": [
                "None", "Pxe", "Cd", "Usb", "Hdd", "BiosSetup", "UefiShell", "UefiHttp"],
            "BootSourceOverrideEnabled@Redfish.AllowableValues": ["Disabled", "Once", "Continuous"],
            "BootOrder": [f"Boot{b[0]}" for b in boot_opts],
            "BootOptions": link(f"{sys_path}/BootOptions"),
        },
        "Processors": link(f"{sys_path}/Processors"),
        "Memory": link(f"{sys_path}/Memory"),
        "EthernetInterfaces": link(f"{sys_path}/EthernetInterfaces"),
        "Storage": link(f"{sys_path}/Storage"),
        "SecureBoot": link(f"{sys_path}/SecureBoot"),
        "Bios": link(f"{sys_path}/Bios"),
        "LogServices": link(f"{sys_path}/LogServices"),
        "PCIeDevices": [link(p) for p in host_pcie],
        "PCIeDevices@odata.count": len(host_pcie),
        "Links": {
            "Chassis": [link(ch_dgx)],
            "ManagedBy": [link(f"{ROOT}/Managers/BMC")],
        },
        "Actions": reset_action(
            f"{sys_path}/Actions/ComputerSystem.Reset",
            ["On", "ForceOff", "GracefulShutdown", "GracefulRestart", "ForceRestart", "PowerCycle"]),
    })

    sel_log(m, sys_path, [
        ("2024-03-01T09:58:12+00:00", "OK", "System boot completed"),
        ("2024-03-01T10:02:40+00:00", "Warning", "FAN_3 speed below lower non-critical threshold"),
        ("2024-03-01T10:03:05+00:00", "OK", "FAN_3 speed back within thresholds"),
    ])

    # GPU baseboard: 8 x H100 80GB HBM3.
    gpus = [f"GPU_SXM_{i}" for i in range(1, 9)]
    gpu_serial = {g: f"16549220{i:05d}" for i, g in enumerate(gpus, start=1)}
    for i, g in enumerate(gpus, start=1):
        p = f"{hgx_path}/Processors/{g}"
        chassis = f"{ROOT}/Chassis/HGX_{g}"
        mem = f"{hgx_path}/Memory/{g}_DRAM_0"
        m.add(p, {
            "@odata.type": "#Processor.v1_20_0.Processor",
            "Id": g,
            "Name": f"{g} Processor Module",
            "ProcessorType": "GPU",
            "ProcessorArchitecture": "OEM",
            "Manufacturer": "NVIDIA",
            "Model": "NVIDIA H100 80GB HBM3",
            "PartNumber": "2330-885-A1",
            "SerialNumber": gpu_serial[g],
            "UUID": f"7c5e1b9a-3d2f-4e8b-a1c6-0f9d8e7b{i:04x}",
            "FirmwareVersion": "96.00.74.00.0C",
            "MaxSpeedMHz": 1980,
            "MinSpeedMHz": 345,
            "OperatingSpeedMHz": 1755,
            "Socket": f"SXM{i}",
            "Location": {"PartLocation": {"ServiceLabel": f"SXM{i}", "LocationType": "Slot"}},
            "MemorySummary": {"TotalMemorySizeMiB": 81559, "ECCModeEnabled": True},
            "EnvironmentMetrics": link(f"{p}/EnvironmentMetrics"),
            "Status": ok(),
            "Links": {
                "Chassis": link(chassis),
                "Memory": [link(mem)],
                "PCIeDevice": link(f"{chassis}/PCIeDevices/{g}"),
            },
            "Oem": {"Nvidia": {
                "@odata.type": "#NvidiaProcessor.v1_2_0.NvidiaGPU",
                "MIGModeEnabled": g == "GPU_SXM_8",
                "RemapperMetrics": {"CorrectableRowRemappingCount": 0, "UncorrectableRowRemappingCount": 0},
            }},
        })
        m.add(f"{p}/EnvironmentMetrics", {
            "@odata.type": "#EnvironmentMetrics.v1_3_0.EnvironmentMetrics",
            "Id": "EnvironmentMetrics",
            "Name": f"{g} Environment Metrics",
            "TemperatureCelsius": {"Reading": 31 + i},
            "PowerWatts": {"Reading": 68.5 + i},
            "PowerLimitWatts": {"SetPoint": 700, "AllowableMin": 200, "AllowableMax": 700},
        })
        m.add(mem, {
            "@odata.type": "#Memory.v1_17_0.Memory",
            "Id": f"{g}_DRAM_0",
            "Name": f"{g} DRAM 0",
            "MemoryType": "DRAM",
            "MemoryDeviceType": "HBM3",
            "CapacityMiB": 81559,
            "ErrorCorrection": "SingleBitECC",
            "Manufacturer": "NVIDIA",
            "SerialNumber": gpu_serial[g],
            "Status": ok(),
            "Links": {"Processors": [link(p)]},
        })
        # The GPU's own chassis and PCIe device.
        dev = f"{chassis}/PCIeDevices/{g}"
        pcie_device(m, dev, {
            "Name": f"{g} PCIe Device",
            "Manufacturer": "NVIDIA",
            "Model": "H100 80GB HBM3",
            "PartNumber": "2330-885-A1",
            "SerialNumber": gpu_serial[g],
            "FirmwareVersion": "96.00.74.00.0C",
            "DeviceType": "SingleFunction",
            "PCIeInterface": {"PCIeType": "Gen5", "MaxPCIeType": "Gen5", "LanesInUse": 16, "MaxLanes": 16},
        }, [0])
        pcie_function(m, dev, 0, "0x10DE", "0x2330", "0x10DE", "0x16C1", "0x030200",
                      "DisplayController")
        m.collection(f"{chassis}/PCIeDevices", "PCIeDeviceCollection", "PCIe Device Collection", [dev])
        m.add(chassis, {
            "@odata.type": "#Chassis.v1_23_0.Chassis",
            "Id": f"HGX_{g}",
            "Name": f"HGX_{g}",
            "ChassisType": "Module",
            "Manufacturer": "NVIDIA",
            "Model": "H100 80GB HBM3",
            "PartNumber": "2330-885-A1",
            "SerialNumber": gpu_serial[g],
            "Status": ok(),
            "PCIeDevices": link(f"{chassis}/PCIeDevices"),
            "Links": {
                "ContainedBy": link(f"{ROOT}/Chassis/HGX_Chassis_0"),
                "ManagedBy": [link(f"{ROOT}/Managers/HGX_BMC_0")],
                "Processors": [link(p)],
            },
        })
    m.collection(f"{hgx_path}/Processors", "ProcessorCollection", "Processors Collection",
                 [f"{hgx_path}/Processors/{g}" for g in gpus])
    m.collection(f"{hgx_path}/Memory", "MemoryCollection", "Memory Module Collection",
                 [f"{hgx_path}/Memory/{g}_DRAM_0" for g in gpus])
    computer_system(m, hgx, {
        "Name": "HGX_Baseboard_0",
        "Description": "HGX H100 8-GPU baseboard",
        "Manufacturer": "NVIDIA",
        "Model": "HGX H100 8-GPU",
        "PartNumber": "935-24287-0001-000",
        "SerialNumber": "1653922004321",
        "UUID": "5b1d0c7e-9f3a-4d2b-8e6f-a4c3b2d1e0f9",
        "PowerState": "On",
        "Status": ok(),
        "Processors": link(f"{hgx_path}/Processors"),
        "Memory": link(f"{hgx_path}/Memory"),
        "Links": {
            "Chassis": [link(f"{ROOT}/Chassis/HGX_Chassis_0")],
            "ManagedBy": [link(f"{ROOT}/Managers/HGX_BMC_0")],
        },
    })

    # Chassis: the DGX enclosure, the HGX baseboard, GPUs (above) and NVSwitches.
    nvswitches = [f"HGX_NVSwitch_{i}" for i in range(4)]
    for i, nv in enumerate(nvswitches):
        m.add(f"{ROOT}/Chassis/{nv}", {
            "@odata.type": "#Chassis.v1_23_0.Chassis",
            "Id": nv,
            "Name": nv,
            "ChassisType": "Module",
            "Manufacturer": "NVIDIA",
            "Model": "NVSwitch",
            "SerialNumber": f"1654822{i:06d}",
            "Status": ok(),
            "Links": {
                "ContainedBy": link(f"{ROOT}/Chassis/HGX_Chassis_0"),
                "ManagedBy": [link(f"{ROOT}/Managers/HGX_BMC_0")],
            },
        })
    m.add(f"{ROOT}/Chassis/HGX_Chassis_0", {
        "@odata.type": "#Chassis.v1_23_0.Chassis",
        "Id": "HGX_Chassis_0",
        "Name": "HGX_Chassis_0",
        "ChassisType": "Module",
        "Manufacturer": "NVIDIA",
        "Model": "HGX H100 8-GPU",
        "SerialNumber": "1653922004321",
        "PowerState": "On",
        "Status": ok(),
        "Links": {
            "ComputerSystems": [link(hgx_path)],
            "ContainedBy": link(ch_dgx),
            "Contains": [link(f"{ROOT}/Chassis/HGX_{g}") for g in gpus]
            + [link(f"{ROOT}/Chassis/{nv}") for nv in nvswitches],
            "ManagedBy": [link(f"{ROOT}/Managers/HGX_BMC_0")],
        },
    })
    m.add(ch_dgx, {
        "@odata.type": "#Chassis.v1_23_0.Chassis",
        "Id": host,
        "Name": "DGX",
        "ChassisType": "RackMount",
        "Manufacturer": "NVIDIA",
        "Model": "DGXH100",
        "PartNumber": "965-24387-0002-000",
        "SerialNumber": "1660522000124",
        "PowerState": "On",
        "Status": ok(),
        "PCIeDevices": link(f"{ch_dgx}/PCIeDevices"),
        "Power": link(f"{ch_dgx}/Power"),
        "Thermal": link(f"{ch_dgx}/Thermal"),
        "Links": {
            "ComputerSystems": [link(sys_path)],
            "Contains": [link(f"{ROOT}/Chassis/HGX_Chassis_0")],
            "ManagedBy": [link(f"{ROOT}/Managers/BMC")],
        },
    })
    legacy_power_thermal(m, ch_dgx, [f"PSU{i}" for i in range(6)],
                         [f"FAN_{i}" for i in range(1, 13)])
    chassis_ids = [host, "HGX_Chassis_0"] + [f"HGX_{g}" for g in gpus] + nvswitches
    m.collection(f"{ROOT}/Chassis", "ChassisCollection", "Chassis Collection",
                 [f"{ROOT}/Chassis/{c}" for c in chassis_ids])

    # Managers: the host BMC (virtual media) and the HGX BMC (HMC).
    bmc = f"{ROOT}/Managers/BMC"
    vm = f"{bmc}/VirtualMedia"
    slots = [virtual_media(m, vm, "CD1", ["CD", "DVD"], "Virtual CD 1"),
             virtual_media(m, vm, "USB1", ["USBStick"], "Virtual USB 1")]
    m.collection(vm, "VirtualMediaCollection", "Virtual Media Collection", slots)
    m.add(f"{bmc}/EthernetInterfaces/eth0", {
        "@odata.type": "#EthernetInterface.v1_9_0.EthernetInterface",
        "Id": "eth0",
        "Name": "BMC eth0",
        "MACAddress": "5C:FF:35:0D:7A:0F",
        "InterfaceEnabled": True,
        "IPv4Addresses": [{"Address": "10.0.10.23", "SubnetMask": "255.255.255.0",
                           "Gateway": "10.0.10.1", "AddressOrigin": "DHCP"}],
        "Status": ok(),
    })
    m.collection(f"{bmc}/EthernetInterfaces", "EthernetInterfaceCollection",
                 "Ethernet Network Interface Collection", [f"{bmc}/EthernetInterfaces/eth0"])
    # The host interface (DSP0270): the host's USB network channel to this
    # BMC's Redfish service, off in this fleet (credential bootstrapping too).
    hif = f"{bmc}/HostInterfaces"
    m.add(f"{hif}/Self", {
        "@odata.type": "#HostInterface.v1_3_0.HostInterface",
        "Id": "Self",
        "Name": "Host Interface",
        "HostInterfaceType": "NetworkHostInterface",
        "InterfaceEnabled": False,
        "ExternallyAccessible": False,
        "AuthenticationModes": ["BasicAuth", "RedfishSessionAuth"],
        "CredentialBootstrapping": {"Enabled": False, "EnableAfterReset": False,
                                    "RoleId": "Administrator"},
        "Status": {"State": "Disabled", "Health": "OK"},
    })
    m.collection(hif, "HostInterfaceCollection", "Host Interface Collection", [f"{hif}/Self"])
    m.add(bmc, {
        "@odata.type": "#Manager.v1_19_0.Manager",
        "Id": "BMC",
        "Name": "DGX BMC",
        "ManagerType": "BMC",
        "Manufacturer": "NVIDIA",
        "Model": "AST2600",
        "FirmwareVersion": "24.09.17",
        "UUID": "9d8c7b6a-5f4e-4d3c-8b2a-1f0e9d8c7b6a",
        "PowerState": "On",
        "Status": ok(),
        "VirtualMedia": link(vm),
        "EthernetInterfaces": link(f"{bmc}/EthernetInterfaces"),
        "HostInterfaces": link(hif),
        "Links": {
            "ManagerForServers": [link(sys_path)],
            "ManagerForChassis": [link(ch_dgx)],
        },
        "Actions": {"#Manager.Reset": {
            "target": f"{bmc}/Actions/Manager.Reset",
            "ResetType@Redfish.AllowableValues": ["ForceRestart", "GracefulRestart"],
        }},
    })
    m.add(f"{ROOT}/Managers/HGX_BMC_0", {
        "@odata.type": "#Manager.v1_19_0.Manager",
        "Id": "HGX_BMC_0",
        "Name": "HGX BMC 0",
        "ManagerType": "BMC",
        "Manufacturer": "NVIDIA",
        "FirmwareVersion": "HGX-22.10-1-rc67",
        "UUID": "2a3b4c5d-6e7f-4a8b-9c0d-1e2f3a4b5c6d",
        "PowerState": "On",
        "Status": ok(),
        "Links": {
            "ManagerForServers": [link(hgx_path)],
            "ManagerForChassis": [link(f"{ROOT}/Chassis/HGX_Chassis_0")],
        },
        "Actions": {"#Manager.Reset": {
            "target": f"{ROOT}/Managers/HGX_BMC_0/Actions/Manager.Reset",
            "ResetType@Redfish.AllowableValues": ["ForceRestart"],
        }},
    })
    m.add(f"{ROOT}/Managers/HGX_FabricManager_0", {
        "@odata.type": "#Manager.v1_19_0.Manager",
        "Id": "HGX_FabricManager_0",
        "Name": "HGX Fabric Manager 0",
        "ManagerType": "Service",
        "Status": ok(),
    })
    m.collection(f"{ROOT}/Managers", "ManagerCollection", "Manager Collection",
                 [bmc, f"{ROOT}/Managers/HGX_BMC_0", f"{ROOT}/Managers/HGX_FabricManager_0"])

    # Firmware inventory.
    fw = [
        ("HostBMC_0", "Host BMC firmware", "24.09.17", [bmc]),
        ("HostBIOS_0", "Host BIOS", "01.05.03", [sys_path]),
        ("CPLDMB_0", "Motherboard CPLD", "0.2.1.9", [ch_dgx]),
        ("HGX_FW_BMC_0", "HGX BMC firmware", "HGX-22.10-1-rc67", [f"{ROOT}/Managers/HGX_BMC_0"]),
        ("HGX_FW_FPGA_0", "HGX FPGA firmware", "1.3.0", [f"{ROOT}/Chassis/HGX_Chassis_0"]),
    ]
    fw += [(f"HGX_FW_{g}", f"{g} firmware", "96.00.74.00.0C", [f"{hgx_path}/Processors/{g}"])
           for g in gpus]
    fw += [(f"HGX_FW_NVSwitch_{i}", f"NVSwitch {i} firmware", "96.10.3F.00.01",
            [f"{ROOT}/Chassis/HGX_NVSwitch_{i}"]) for i in range(4)]
    for fid, name, ver, rel in fw:
        firmware(m, fid, name, ver, rel, manufacturer="NVIDIA")
    update_service(m, [f[0] for f in fw])
    return m


# ---------------------------------------------------------------------- generic-2cpu


def generic_2cpu():
    m = Mockup("generic-2cpu")
    sid = "System.Embedded.1"
    sys_path = f"{ROOT}/Systems/{sid}"
    secure_boot(m, sys_path, False, "UserMode")
    bios(m, sys_path, "Settings", {
        "BootMode": "Uefi",
        "ProcVirtualization": "Enabled",
        "SriovGlobalEnable": "Enabled",
        "LogicalProc": "Enabled",
        "TpmSecurity": "On",
        "SysMemSize": "256 GB",
    }, ["OnReset", "AtMaintenanceWindowStart", "InMaintenanceWindowOnReset"])
    ch = f"{ROOT}/Chassis/{sid}"  # Dell: the chassis has the system's id
    mgr = f"{ROOT}/Managers/iDRAC.Embedded.1"
    service_root(m, "Dell", "6c6c4544-0047-3410-8051-b4c04f4e3333", "Integrated Dell Remote Access Controller")
    account_service(m, [("1", "", "None", False), ("2", "root", "Administrator", True),
                        ("3", "", "None", False), ("4", "", "None", False)])
    m.collection(f"{ROOT}/Systems", "ComputerSystemCollection", "Computer System Collection", [sys_path])

    cpus = ["CPU.Socket.1", "CPU.Socket.2"]
    for i, cid in enumerate(cpus, start=1):
        m.add(f"{sys_path}/Processors/{cid}", {
            "@odata.type": "#Processor.v1_18_0.Processor",
            "Id": cid,
            "Name": "CPU",
            "ProcessorType": "CPU",
            "ProcessorArchitecture": "x86",
            "InstructionSet": "x86-64",
            "Manufacturer": "Intel",
            "Model": "Intel(R) Xeon(R) Gold 6338 CPU @ 2.00GHz",
            "Socket": f"CPU.Socket.{i}",
            "TotalCores": 32,
            "TotalEnabledCores": 32,
            "TotalThreads": 64,
            "MaxSpeedMHz": 4000,
            "OperatingSpeedMHz": 2000,
            "Status": ok(),
        })
    m.collection(f"{sys_path}/Processors", "ProcessorCollection", "Processors Collection",
                 [f"{sys_path}/Processors/{c}" for c in cpus])

    dimms = [f"DIMM.Socket.{s}{n}" for s in "AB" for n in range(1, 5)]
    for i, did in enumerate(dimms):
        m.add(f"{sys_path}/Memory/{did}", {
            "@odata.type": "#Memory.v1_16_0.Memory",
            "Id": did,
            "Name": "DIMM SLOT " + did.rsplit(".", 1)[1],
            "MemoryType": "DRAM",
            "MemoryDeviceType": "DDR4",
            "BaseModuleType": "RDIMM",
            "CapacityMiB": 32768,
            "OperatingSpeedMhz": 3200,
            "Manufacturer": "Hynix Semiconductor",
            "PartNumber": "HMA84GR7DJR4N-XN",
            "SerialNumber": f"{0x3A5B0000 + i:08X}",
            "DeviceLocator": "DIMM " + did.rsplit(".", 1)[1],
            "Status": ok(),
        })
    m.collection(f"{sys_path}/Memory", "MemoryCollection", "Memory Collection",
                 [f"{sys_path}/Memory/{d}" for d in dimms])

    nics = [("NIC.Integrated.1-1-1", "B4:96:91:A1:0C:40"), ("NIC.Integrated.1-2-1", "B4:96:91:A1:0C:41")]
    for nid, mac in nics:
        m.add(f"{sys_path}/EthernetInterfaces/{nid}", {
            "@odata.type": "#EthernetInterface.v1_8_0.EthernetInterface",
            "Id": nid,
            "Name": "System Ethernet Interface",
            "MACAddress": mac,
            "PermanentMACAddress": mac,
            "SpeedMbps": 25000,
            "LinkStatus": "LinkUp",
            "InterfaceEnabled": True,
            "Status": ok(),
        })
    m.collection(f"{sys_path}/EthernetInterfaces", "EthernetInterfaceCollection",
                 "Ethernet Interface Collection", [f"{sys_path}/EthernetInterfaces/{n[0]}" for n in nics])

    st = f"{sys_path}/Storage/NonRAID.Integrated.1-1"
    drives = [("Disk.Bay.0", 960197124096, "Dell Ent NVMe P5600 MU U.2 960GB", "PHAB123400AB960A"),
              ("Disk.Bay.1", 960197124096, "Dell Ent NVMe P5600 MU U.2 960GB", "PHAB123400CD960A")]
    for did, cap, model, serial in drives:
        m.add(f"{st}/Drives/{did}", {
            "@odata.type": "#Drive.v1_15_0.Drive",
            "Id": did,
            "Name": f"PCIe SSD in Slot {did[-1]}",
            "MediaType": "SSD",
            "Protocol": "NVMe",
            "CapacityBytes": cap,
            "Manufacturer": "Intel",
            "Model": model,
            "SerialNumber": serial,
            "Status": ok(),
            "Links": {"Storage": link(st)},
        })
    m.add(st, {
        "@odata.type": "#Storage.v1_13_0.Storage",
        "Id": "NonRAID.Integrated.1-1",
        "Name": "PCIe Extender 1",
        "Status": ok(),
        "Drives@odata.count": len(drives),
        "Drives": [link(f"{st}/Drives/{d[0]}") for d in drives],
    })
    m.collection(f"{sys_path}/Storage", "StorageCollection", "Storage Collection", [st])

    computer_system(m, sid, {
        "Name": "System",
        "Manufacturer": "Dell Inc.",
        "Model": "PowerEdge R750",
        "SKU": "7QX2LM3",
        "SerialNumber": "CNIVC0012300AB",
        "UUID": "4c4c4544-0051-5810-8032-b7c04f4c4d33",
        "HostName": "r750-01",
        "BiosVersion": "1.13.2",
        "PowerState": "Off",
        "Status": {"State": "Enabled", "Health": "OK", "HealthRollup": "OK"},
        "ProcessorSummary": {"Count": 2, "CoreCount": 64, "LogicalProcessorCount": 128,
                             "Model": "Intel(R) Xeon(R) Gold 6338 CPU @ 2.00GHz", "Status": ok()},
        "MemorySummary": {"TotalSystemMemoryGiB": 256, "Status": ok()},
        "TrustedModules": [{"InterfaceType": "TPM2_0", "FirmwareVersion": "7.80",
                            "Status": {"State": "Disabled"}}],
        "Boot": {
            "BootSourceOverrideEnabled": "Disabled",
            "BootSourceOverrideTarget": "None",
            "BootSourceOverrideMode": "UEFI",
            "BootSourceOverrideTarget@Redfish.AllowableValues": [
                "None", "Pxe", "Floppy", "Cd", "Hdd", "BiosSetup", "Utilities", "UefiTarget",
                "SDCard", "UefiHttp"],
            "BootOrder": ["NIC.PxeDevice.1-1", "Disk.Bay.0"],
        },
        "Processors": link(f"{sys_path}/Processors"),
        "Memory": link(f"{sys_path}/Memory"),
        "EthernetInterfaces": link(f"{sys_path}/EthernetInterfaces"),
        "Storage": link(f"{sys_path}/Storage"),
        "SecureBoot": link(f"{sys_path}/SecureBoot"),
        "Bios": link(f"{sys_path}/Bios"),
        "Links": {"Chassis": [link(ch)], "ManagedBy": [link(mgr)]},
        "Actions": reset_action(
            f"{sys_path}/Actions/ComputerSystem.Reset",
            ["On", "ForceOff", "ForceRestart", "GracefulRestart", "GracefulShutdown",
             "PushPowerButton", "Nmi", "PowerCycle"]),
    })

    m.add(ch, {
        "@odata.type": "#Chassis.v1_21_0.Chassis",
        "Id": sid,
        "Name": "Computer System Chassis",
        "ChassisType": "RackMount",
        "Manufacturer": "Dell Inc.",
        "Model": "PowerEdge R750",
        "SKU": "7QX2LM3",
        "SerialNumber": "CNIVC0012300AB",
        "PowerState": "Off",
        "Status": ok(),
        "PowerSubsystem": link(f"{ch}/PowerSubsystem"),
        "ThermalSubsystem": link(f"{ch}/ThermalSubsystem"),
        "Links": {"ComputerSystems": [link(sys_path)], "ManagedBy": [link(mgr)]},
    })
    power_thermal_subsystems(m, ch, ["PSU.Slot.1", "PSU.Slot.2"],
                             [f"Fan.Embedded.{i}{ab}" for i in range(1, 4) for ab in "AB"])
    m.collection(f"{ROOT}/Chassis", "ChassisCollection", "Chassis Collection", [ch])

    vm = f"{mgr}/VirtualMedia"
    slots = [virtual_media(m, vm, "CD", ["CD", "DVD"], "Virtual CD"),
             virtual_media(m, vm, "RemovableDisk", ["USBStick"], "Virtual Removable Disk")]
    m.collection(vm, "VirtualMediaCollection", "iDRAC Virtual Media Services Collection", slots)
    m.add(mgr, {
        "@odata.type": "#Manager.v1_17_0.Manager",
        "Id": "iDRAC.Embedded.1",
        "Name": "Manager",
        "ManagerType": "BMC",
        "Model": "15G Monolithic",
        "FirmwareVersion": "7.00.00.00",
        "UUID": "3237564f-c0b7-3280-4710-00514c4c4544",
        "PowerState": "On",
        "Status": ok(),
        "VirtualMedia": link(vm),
        "Links": {"ManagerForServers": [link(sys_path)], "ManagerForChassis": [link(ch)]},
        "Actions": {"#Manager.Reset": {
            "target": f"{mgr}/Actions/Manager.Reset",
            "ResetType@Redfish.AllowableValues": ["GracefulRestart"],
        }},
    })
    m.collection(f"{ROOT}/Managers", "ManagerCollection", "Manager Collection", [mgr])

    fw = [
        ("Installed-25227-7.00.00.00", "Integrated Dell Remote Access Controller", "7.00.00.00", [mgr]),
        ("Installed-159-1.13.2", "BIOS", "1.13.2", [sys_path]),
        ("Installed-101548-22.31.6", "Broadcom Adv. Dual 25Gb Ethernet", "22.31.6",
         [f"{sys_path}/EthernetInterfaces/NIC.Integrated.1-1-1"]),
    ]
    for fid, name, ver, rel in fw:
        firmware(m, fid, name, ver, rel)
    update_service(m, [f[0] for f in fw])
    return m


if __name__ == "__main__":
    for mockup in (dgx_h100(), generic_2cpu()):
        mockup.write()
