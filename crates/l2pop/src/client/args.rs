//! The client verbs' command line: one subcommand per resource, one per verb, flags named as
//! `openstack network create` names them where it has them. Parsing only; what a verb sends is
//! decided in [`super::plan`].

use clap::{Args, Subcommand, ValueEnum};
use serde::Serialize;

/// The default API endpoint (Neutron's port).
pub const DEFAULT_URL: &str = "http://127.0.0.1:9696";

/// Options every client verb shares.
#[derive(Args, Clone, Debug, Default, PartialEq, Eq)]
pub struct ClientOptions {
    /// The server's API endpoint [env: L2POP_URL] [default: http://127.0.0.1:9696].
    #[arg(
        long,
        global = true,
        value_name = "URL",
        help_heading = "Client options"
    )]
    pub url: Option<String>,
    /// The token sent as X-Auth-Token [env: L2POP_TOKEN].
    #[arg(
        long,
        global = true,
        value_name = "TOKEN",
        help_heading = "Client options"
    )]
    pub token: Option<String>,
    /// Print the server's JSON answer instead of a table.
    #[arg(long, global = true, help_heading = "Client options")]
    pub json: bool,
}

/// The resources the client verbs act on.
#[derive(Subcommand, Debug, Clone, PartialEq, Eq)]
pub enum Resource {
    /// Networks (`/v2.0/networks`).
    #[command(subcommand)]
    Network(NetworkVerb),
    /// Subnets (`/v2.0/subnets`).
    #[command(subcommand)]
    Subnet(SubnetVerb),
    /// Ports (`/v2.0/ports`).
    #[command(subcommand)]
    Port(PortVerb),
    /// BGPVPNs and their network associations (`/v2.0/bgpvpn/bgpvpns`).
    #[command(subcommand)]
    Bgpvpn(BgpvpnVerb),
    /// Run this host's agent (`l2pop agent --config etc/agent.toml`), or ask about agents:
    /// `list` (the server's `/v2.0/agents`), `status` (a running agent's own view).
    Agent(AgentArgs),
    /// A host's desired forwarding table, with provenance (`/v2.0/l2pop/hosts/{host}/fdb`).
    #[command(subcommand)]
    Fdb(FdbVerb),
}

/// `network ...`
#[derive(Subcommand, Debug, Clone, PartialEq, Eq)]
pub enum NetworkVerb {
    /// Create a network.
    Create(NetworkCreate),
    /// List networks.
    List,
    /// Show one network.
    Show(Id),
    /// Change a network's name, description or admin state.
    Update(NetworkUpdate),
    /// Delete a network.
    Delete(Id),
}

/// `subnet ...`
#[derive(Subcommand, Debug, Clone, PartialEq, Eq)]
pub enum SubnetVerb {
    /// Create a subnet.
    Create(SubnetCreate),
    /// List subnets.
    List,
    /// Show one subnet.
    Show(Id),
    /// Rename a subnet.
    Update(SubnetUpdate),
}

/// `port ...`
#[derive(Subcommand, Debug, Clone, PartialEq, Eq)]
pub enum PortVerb {
    /// Create a port.
    Create(PortCreate),
    /// List ports.
    List(PortList),
    /// Show one port.
    Show(Id),
    /// Change a port: binding, MAC, fixed IPs, device, name, admin state.
    Update(PortUpdate),
    /// Delete a port.
    Delete(Id),
}

/// `bgpvpn ...`
#[derive(Subcommand, Debug, Clone, PartialEq, Eq)]
pub enum BgpvpnVerb {
    /// Create a BGPVPN (admin).
    Create(BgpvpnCreate),
    /// List BGPVPNs.
    List,
    /// Show one BGPVPN.
    Show(Id),
    /// Change a BGPVPN's name, targets or local preference.
    Update(BgpvpnUpdate),
    /// Delete a BGPVPN (admin).
    Delete(Id),
    /// A BGPVPN's network associations.
    #[command(subcommand)]
    Association(AssociationVerb),
}

/// `bgpvpn association ...`
#[derive(Subcommand, Debug, Clone, PartialEq, Eq)]
pub enum AssociationVerb {
    /// Associate a network with a BGPVPN.
    Create(AssociationCreate),
    /// List a BGPVPN's network associations.
    List(BgpvpnRef),
    /// Remove a network association.
    Delete(AssociationRef),
}

/// `agent ...`
#[derive(Subcommand, Debug, Clone, PartialEq, Eq)]
pub enum AgentVerb {
    /// List agents (admin).
    List,
    /// A running agent's stream positions, ports, networks and drift from the kernel.
    Status(AgentEndpoint),
}

/// `agent [--config F ...]` runs the agent; `agent <verb>` asks about agents.
#[derive(Args, Debug, Clone, PartialEq, Eq)]
#[command(args_conflicts_with_subcommands = true)]
pub struct AgentArgs {
    #[command(subcommand)]
    pub verb: Option<AgentVerb>,
    #[command(flatten)]
    pub run: crate::agent::config::Flags,
}

/// Where a running agent answers (its `agent.status_listen`).
#[derive(Args, Debug, Clone, PartialEq, Eq)]
pub struct AgentEndpoint {
    /// The agent's status endpoint.
    #[arg(long, default_value = "http://127.0.0.1:9697")]
    pub agent: String,
}

/// `fdb ...`
#[derive(Subcommand, Debug, Clone, PartialEq, Eq)]
pub enum FdbVerb {
    /// Show a host's desired FDB: one row per entry, with who put it there (admin).
    Show(FdbShow),
    /// For one MAC on a host: who put it in the desired table (server provenance), and
    /// whether that host's agent has it in the kernel, as of which stream position.
    Explain(FdbExplain),
}

/// `fdb explain`
#[derive(Args, Debug, Clone, PartialEq, Eq)]
pub struct FdbExplain {
    /// The host whose table to explain.
    #[arg(long)]
    pub host: String,
    /// The MAC address of the entry.
    #[arg(long)]
    pub mac: String,
    /// Only this network.
    #[arg(long)]
    pub network: Option<String>,
    /// The host's agent status endpoint.
    #[arg(long, default_value = "http://127.0.0.1:9697")]
    pub agent: String,
}

/// One resource by id.
#[derive(Args, Debug, Clone, PartialEq, Eq)]
pub struct Id {
    /// The resource's id.
    pub id: String,
}

/// `network create`
#[derive(Args, Debug, Clone, Default, PartialEq, Eq)]
pub struct NetworkCreate {
    /// The network's name.
    #[arg(long)]
    pub name: Option<String>,
    /// The network's description.
    #[arg(long)]
    pub description: Option<String>,
    /// provider:network_type (vxlan, gre, geneve, vlan, flat, local; admin).
    #[arg(long = "type", value_name = "TYPE")]
    pub network_type: Option<String>,
    /// provider:segmentation_id: the VNI or VLAN id (admin).
    #[arg(long, value_name = "ID")]
    pub segment: Option<u32>,
    /// provider:physical_network (admin).
    #[arg(long, value_name = "NAME")]
    pub physical_network: Option<String>,
    /// The owning project (admin; default: the caller's).
    #[arg(long)]
    pub project: Option<String>,
    /// Create the network administratively down.
    #[arg(long)]
    pub disable: bool,
}

/// `network update`
#[derive(Args, Debug, Clone, PartialEq, Eq)]
pub struct NetworkUpdate {
    /// The network's id.
    pub id: String,
    /// A new name.
    #[arg(long)]
    pub name: Option<String>,
    /// A new description.
    #[arg(long)]
    pub description: Option<String>,
    #[command(flatten)]
    pub state: AdminState,
}

/// `--enable` / `--disable`: admin_state_up.
#[derive(Args, Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AdminState {
    /// Set admin_state_up to true.
    #[arg(long, conflicts_with = "disable")]
    pub enable: bool,
    /// Set admin_state_up to false.
    #[arg(long)]
    pub disable: bool,
}

impl AdminState {
    /// The admin_state_up to send, if either flag was given.
    pub fn admin_state_up(self) -> Option<bool> {
        match (self.enable, self.disable) {
            (true, _) => Some(true),
            (_, true) => Some(false),
            _ => None,
        }
    }
}

/// `subnet create`
#[derive(Args, Debug, Clone, PartialEq, Eq)]
pub struct SubnetCreate {
    /// The network's id.
    #[arg(long, value_name = "ID")]
    pub network: String,
    /// The subnet's CIDR (`10.0.0.0/24`).
    #[arg(long)]
    pub cidr: String,
    /// The subnet's name.
    #[arg(long)]
    pub name: Option<String>,
    /// The gateway address (default: the first address).
    #[arg(long, value_name = "IP", conflicts_with = "no_gateway")]
    pub gateway: Option<String>,
    /// No gateway.
    #[arg(long)]
    pub no_gateway: bool,
    /// 4 or 6 (checked against the CIDR).
    #[arg(long, value_name = "4|6")]
    pub ip_version: Option<u8>,
    /// Disable DHCP.
    #[arg(long)]
    pub no_dhcp: bool,
    /// The owning project (admin; default: the caller's).
    #[arg(long)]
    pub project: Option<String>,
}

/// `subnet update`
#[derive(Args, Debug, Clone, PartialEq, Eq)]
pub struct SubnetUpdate {
    /// The subnet's id.
    pub id: String,
    /// The new name.
    #[arg(long)]
    pub name: String,
}

/// `port list`
#[derive(Args, Debug, Clone, Default, PartialEq, Eq)]
pub struct PortList {
    /// Only the ports of this network.
    #[arg(long, value_name = "ID")]
    pub network: Option<String>,
    /// Only the ports bound to this host (admin).
    #[arg(long)]
    pub host: Option<String>,
}

/// The attributes `port create` and `port update` share.
#[derive(Args, Debug, Clone, Default, PartialEq, Eq)]
pub struct PortFields {
    /// The port's name.
    #[arg(long)]
    pub name: Option<String>,
    /// The MAC address (default on create: a free `fa:16:3e:..` one).
    #[arg(long)]
    pub mac: Option<String>,
    /// A fixed IP: `subnet_id=ID,ip_address=IP` (either part may be left out); repeatable.
    #[arg(long = "fixed-ip", value_name = "subnet_id=ID,ip_address=IP", value_parser = parse_fixed_ip)]
    pub fixed_ips: Vec<FixedIp>,
    /// binding:host_id: the host the port is bound to (admin).
    #[arg(long)]
    pub host: Option<String>,
    /// The device owner (`compute:nova`, `network:dhcp`, ...).
    #[arg(long)]
    pub device_owner: Option<String>,
    /// The device id (the instance's id).
    #[arg(long)]
    pub device_id: Option<String>,
}

/// `port create`
#[derive(Args, Debug, Clone, PartialEq, Eq)]
pub struct PortCreate {
    /// The network's id.
    #[arg(long, value_name = "ID")]
    pub network: String,
    #[command(flatten)]
    pub fields: PortFields,
    /// The owning project (admin; default: the caller's).
    #[arg(long)]
    pub project: Option<String>,
    /// Create the port administratively down.
    #[arg(long)]
    pub disable: bool,
}

/// `port update`
#[derive(Args, Debug, Clone, PartialEq, Eq)]
pub struct PortUpdate {
    /// The port's id.
    pub id: String,
    #[command(flatten)]
    pub fields: PortFields,
    /// Unbind the port (binding:host_id "").
    #[arg(long, conflicts_with = "host")]
    pub unbind: bool,
    #[command(flatten)]
    pub state: AdminState,
}

/// One `--fixed-ip`: what Neutron's `fixed_ips` items hold.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct FixedIp {
    /// The subnet to allocate from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subnet_id: Option<String>,
    /// The address wanted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip_address: Option<String>,
}

/// Parses `subnet_id=ID,ip_address=IP` (also `subnet=` and `ip-address=`, as openstack spells
/// them); values are checked by the server.
pub fn parse_fixed_ip(text: &str) -> Result<FixedIp, String> {
    let mut fixed = FixedIp::default();
    for part in text.split(',') {
        let (key, value) = part
            .split_once('=')
            .ok_or_else(|| format!("{part:?} is not key=value"))?;
        let slot = match key.trim() {
            "subnet_id" | "subnet" => &mut fixed.subnet_id,
            "ip_address" | "ip-address" => &mut fixed.ip_address,
            other => {
                return Err(format!(
                    "unknown key {other:?}: expected subnet_id or ip_address"
                ));
            }
        };
        *slot = Some(value.trim().to_owned());
    }
    Ok(fixed)
}

/// `bgpvpn create`
#[derive(Args, Debug, Clone, Default, PartialEq, Eq)]
pub struct BgpvpnCreate {
    /// The BGPVPN's name.
    #[arg(long)]
    pub name: Option<String>,
    /// l2 (EVPN) or l3 (IP-VPN; the default).
    #[arg(long = "type", value_name = "TYPE")]
    pub vpn_type: Option<VpnType>,
    #[command(flatten)]
    pub targets: Targets,
    /// The VXLAN VNI (l2).
    #[arg(long)]
    pub vni: Option<u64>,
    /// The BGP LOCAL_PREF of the routes advertised.
    #[arg(long, value_name = "N")]
    pub local_pref: Option<u64>,
    /// The owning project (default: the caller's).
    #[arg(long)]
    pub project: Option<String>,
}

/// `bgpvpn update`
#[derive(Args, Debug, Clone, PartialEq, Eq)]
pub struct BgpvpnUpdate {
    /// The BGPVPN's id.
    pub id: String,
    /// A new name.
    #[arg(long)]
    pub name: Option<String>,
    /// Target lists given replace the current ones.
    #[command(flatten)]
    pub targets: Targets,
    /// A new BGP LOCAL_PREF.
    #[arg(long, value_name = "N")]
    pub local_pref: Option<u64>,
}

/// Route targets and distinguishers (`ASN:N` or `IP:N`), each flag repeatable.
#[derive(Args, Debug, Clone, Default, PartialEq, Eq)]
pub struct Targets {
    /// A route target, imported and exported; repeatable.
    #[arg(long = "route-target", value_name = "RT")]
    pub route_targets: Vec<String>,
    /// A route target imported only; repeatable.
    #[arg(long = "import-target", value_name = "RT")]
    pub import_targets: Vec<String>,
    /// A route target exported only; repeatable.
    #[arg(long = "export-target", value_name = "RT")]
    pub export_targets: Vec<String>,
    /// A route distinguisher; repeatable.
    #[arg(long = "route-distinguisher", value_name = "RD")]
    pub route_distinguishers: Vec<String>,
}

/// networking-bgpvpn's `type`.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum VpnType {
    /// Layer 2 (EVPN).
    L2,
    /// Layer 3 (IP-VPN).
    L3,
}

/// A BGPVPN by id.
#[derive(Args, Debug, Clone, PartialEq, Eq)]
pub struct BgpvpnRef {
    /// The BGPVPN's id.
    pub bgpvpn: String,
}

/// `bgpvpn association create`
#[derive(Args, Debug, Clone, PartialEq, Eq)]
pub struct AssociationCreate {
    /// The BGPVPN's id.
    pub bgpvpn: String,
    /// The network's id.
    #[arg(long, value_name = "ID")]
    pub network: String,
    /// The owning project (admin; default: the caller's).
    #[arg(long)]
    pub project: Option<String>,
}

/// `bgpvpn association delete`
#[derive(Args, Debug, Clone, PartialEq, Eq)]
pub struct AssociationRef {
    /// The BGPVPN's id.
    pub bgpvpn: String,
    /// The association's id.
    pub association: String,
}

/// `fdb show`
#[derive(Args, Debug, Clone, PartialEq, Eq)]
pub struct FdbShow {
    /// The host whose table to show.
    #[arg(long)]
    pub host: String,
}

/// The client verbs as the binary mounts them (options global, resources as top-level
/// subcommands), for tests.
#[cfg(test)]
#[derive(clap::Parser, Debug)]
#[command(name = "l2pop")]
pub(crate) struct TestCli {
    #[command(flatten)]
    pub options: ClientOptions,
    #[command(subcommand)]
    pub resource: Resource,
}

/// Parses `l2pop <words>`.
#[cfg(test)]
pub(crate) fn parse(words: &str) -> Result<TestCli, clap::Error> {
    use clap::Parser as _;
    TestCli::try_parse_from(std::iter::once("l2pop").chain(words.split_whitespace()))
}
