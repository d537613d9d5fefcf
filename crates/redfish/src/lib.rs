//! Redfish BMC driver (being written).
