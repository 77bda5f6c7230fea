//! Why a request was refused, as data: what kind of refusal ([`ErrorKind`]), Neutron's
//! exception name, a message, and the offending `field` and `value`, so that a client (and an
//! operator reading a log) sees exactly what was refused. Nothing here knows HTTP or the bus:
//! the server maps a [`NeutronError`] once to an HTTP answer and once to an RPC failure.

use l2pop_bgpvpn::BgpvpnError;
use l2pop_engine::EventError;
use l2pop_model::ModelError;
use serde_json::{Value, json};

/// The kinds of refusal, each answered one way by every edge (HTTP: 400, 401, 403, 404, 409,
/// 503; RPC: a failure whose class is [`NeutronError::name`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// The request itself is wrong: a malformed body, an unacceptable value.
    BadRequest,
    /// No token, or an unknown one.
    Unauthorized,
    /// The caller's token does not allow this.
    Forbidden,
    /// The resource does not exist, or the caller may not see it.
    NotFound,
    /// The request conflicts with the current state.
    Conflict,
    /// The server cannot take it now (standing by, shutting down, its store failed).
    Unavailable,
}

/// A refused request. Nothing was changed.
#[derive(Debug, Clone, PartialEq)]
pub struct NeutronError {
    pub kind: ErrorKind,
    /// Neutron's exception name (`NetworkNotFound`, `MacAddressInUse`, `HTTPBadRequest`, ...).
    pub name: &'static str,
    pub message: String,
    pub field: Option<String>,
    pub value: Option<Value>,
}

impl NeutronError {
    pub fn new(kind: ErrorKind, name: &'static str, message: impl Into<String>) -> Self {
        NeutronError {
            kind,
            name,
            message: message.into(),
            field: None,
            value: None,
        }
    }

    /// `field` has an unacceptable `value`.
    pub fn invalid(field: &str, value: impl Into<Value>, reason: impl std::fmt::Display) -> Self {
        let value = value.into();
        NeutronError {
            field: Some(field.to_owned()),
            message: format!("Invalid input for {field}. Reason: {value} {reason}."),
            value: Some(value),
            ..NeutronError::new(ErrorKind::BadRequest, "HTTPBadRequest", "")
        }
    }

    /// About the request as a whole (malformed JSON, missing body key).
    pub fn bad_request(message: impl Into<String>) -> Self {
        NeutronError::new(ErrorKind::BadRequest, "HTTPBadRequest", message)
    }

    /// As Neutron answers for a resource that does not exist or that the caller may not see.
    pub fn not_found(resource: &str, id: impl std::fmt::Display) -> Self {
        let name = match resource {
            "network" => "NetworkNotFound",
            "subnet" => "SubnetNotFound",
            "port" => "PortNotFound",
            "agent" => "AgentNotFound",
            "bgpvpn" => "BGPVPNNotFound",
            "network_association" => "BGPVPNNetAssocNotFound",
            "bgp_speaker" => "BgpSpeakerNotFound",
            "segment" => "SegmentNotFound",
            "router" => "RouterNotFound",
            _ => "HTTPNotFound",
        };
        let mut error = NeutronError::new(
            ErrorKind::NotFound,
            name,
            format!("{resource} {id} could not be found."),
        );
        error.field = Some("id".to_owned());
        error.value = Some(Value::String(id.to_string()));
        error
    }

    pub fn conflict(name: &'static str, message: impl Into<String>) -> Self {
        NeutronError::new(ErrorKind::Conflict, name, message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        NeutronError::new(ErrorKind::Forbidden, "PolicyNotAuthorized", message)
    }

    pub fn unauthorized() -> Self {
        NeutronError::new(
            ErrorKind::Unauthorized,
            "HTTPUnauthorized",
            "Authentication required: send a valid token in X-Auth-Token.",
        )
    }

    pub fn unavailable(message: impl Into<String>) -> Self {
        NeutronError::new(ErrorKind::Unavailable, "ServiceUnavailable", message)
    }

    pub fn with_field(mut self, field: &str) -> Self {
        self.field = Some(field.to_owned());
        self
    }

    /// The same refusal about item `index` of a bulk request's `collection`: the field becomes
    /// `ports[2].fixed_ips` (or `ports[2]`), and the message starts with it.
    pub fn in_item(mut self, collection: &str, index: usize) -> Self {
        let item = format!("{collection}[{index}]");
        let field = match self.field.take() {
            Some(field) => format!("{item}.{field}"),
            None => item,
        };
        self.message = format!("{field}: {}", self.message);
        self.field = Some(field);
        self
    }

    /// Neutron's error body, `{"NeutronError": {"type", "message", "detail", "field", "value"}}`.
    pub fn body(&self) -> Value {
        let mut inner = json!({
            "type": self.name,
            "message": self.message,
            "detail": "",
        });
        if let Some(field) = &self.field {
            inner["field"] = Value::String(field.clone());
        }
        if let Some(value) = &self.value {
            inner["value"] = value.clone();
        }
        json!({ "NeutronError": inner })
    }
}

impl std::fmt::Display for NeutronError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.name, self.message)
    }
}

impl std::error::Error for NeutronError {}

/// The field an engine message starts with (`"mac: ..."` → `mac`), mapped to the API's name.
fn api_field(message: &str) -> Option<String> {
    let (field, _) = message.split_once(": ")?;
    let api = match field {
        "mac" => "mac_address",
        "host" => "binding:host_id",
        "segmentation_id" => "provider:segmentation_id",
        "physical_network" => "provider:physical_network",
        "network_type" => "provider:network_type",
        other => other,
    };
    Some(api.to_owned())
}

impl From<EventError> for NeutronError {
    fn from(error: EventError) -> Self {
        let (kind, name) = match &error {
            EventError::UnknownNetwork { .. } => (ErrorKind::NotFound, "NetworkNotFound"),
            EventError::UnknownPort(_) => (ErrorKind::NotFound, "PortNotFound"),
            EventError::UnknownRouter(_) => (ErrorKind::NotFound, "RouterNotFound"),
            EventError::NetworkExists(_) | EventError::PortExists(_) => {
                (ErrorKind::Conflict, "Conflict")
            }
            EventError::SegmentInUse { .. } | EventError::FlatNetworkInUse { .. } => {
                (ErrorKind::Conflict, "SegmentationIdInUse")
            }
            EventError::MacInUse { .. } => (ErrorKind::Conflict, "MacAddressInUse"),
            EventError::IpInUse { .. } => (ErrorKind::Conflict, "IpAddressInUse"),
            EventError::NetworkInUse { .. } => (ErrorKind::Conflict, "NetworkInUse"),
            EventError::NetworkBound { .. } => (ErrorKind::Conflict, "SegmentInUse"),
            EventError::UnknownSubnet { .. } => (ErrorKind::NotFound, "SubnetNotFound"),
            EventError::SubnetInUse { .. } => (ErrorKind::Conflict, "SubnetInUse"),
            EventError::MacChangeOnActivePort(_) => (ErrorKind::Conflict, "PortBound"),
            EventError::TunnelingIpInUse { .. } => (ErrorKind::Conflict, "Conflict"),
            _ => (ErrorKind::BadRequest, "HTTPBadRequest"),
        };
        let message = error.to_string();
        NeutronError {
            kind,
            name,
            field: api_field(&message),
            value: event_value(&error),
            message,
        }
    }
}

/// The refused value a model error is about.
fn model_value(error: &ModelError) -> Value {
    match error {
        ModelError::InvalidMac(text)
        | ModelError::InvalidUuid(text)
        | ModelError::InvalidHost(text)
        | ModelError::UnknownNetworkType(text)
        | ModelError::InvalidPhysicalNetwork(text)
        | ModelError::InvalidPortInfo(text) => json!(text),
        ModelError::MulticastMac(mac) => json!(mac.to_string()),
        ModelError::ZeroMac => json!("00:00:00:00:00:00"),
        ModelError::SegmentationIdOutOfRange { id, .. }
        | ModelError::SegmentationIdNotAllowed { id, .. } => json!(id),
        ModelError::SegmentationIdRequired(_) | ModelError::PhysicalNetworkRequired(_) => {
            Value::Null
        }
        ModelError::PhysicalNetworkNotAllowed { name, .. } => json!(name),
        ModelError::NotATunnelType(network_type) => json!(network_type.to_string()),
        ModelError::InvalidTunnelingIp(ip) => json!(ip.to_string()),
        ModelError::CidrHostBits(cidr, _) => json!(cidr.to_string()),
    }
}

/// The refused value an engine error is about, as the API shows that field. `None` only for
/// an extension's own error, which reaches the engine as a message.
fn event_value(error: &EventError) -> Option<Value> {
    let text = |value: &dyn std::fmt::Display| Some(json!(value.to_string()));
    match error {
        EventError::Invalid { source, .. } => Some(model_value(source)),
        EventError::UnknownNetwork { id, .. } => text(id),
        EventError::UnknownPort(id) | EventError::PortExists(id) => text(id),
        EventError::MacChangeOnActivePort(id) => text(id),
        EventError::UnknownRouter(id) => text(id),
        EventError::NetworkExists(id) => text(id),
        EventError::NetworkInUse { network, .. } => text(network),
        EventError::NetworkBound { network, .. } => text(network),
        EventError::SegmentInUse {
            segmentation_id, ..
        } => Some(json!(segmentation_id)),
        EventError::FlatNetworkInUse {
            physical_network, ..
        } => Some(json!(physical_network)),
        EventError::SubnetOverlap { cidr, .. }
        | EventError::UnknownSubnet { cidr, .. }
        | EventError::SubnetInUse { cidr, .. } => text(cidr),
        EventError::MacInUse { mac, .. } => text(mac),
        EventError::IpNotInSubnet { ip, .. }
        | EventError::IpInUse { ip, .. }
        | EventError::DuplicateFixedIp(ip)
        | EventError::TunnelingIpInUse { ip, .. } => text(ip),
        EventError::UnknownExtension(name)
        | EventError::ExtensionType { name, .. }
        | EventError::ExtensionPanicked { name, .. }
        | EventError::ExtensionQuarantined(name) => Some(json!(name)),
        EventError::Extension(_) => None,
    }
}

/// The refused value a BGPVPN error is about.
fn bgpvpn_value(error: &BgpvpnError) -> Value {
    let text = |value: &dyn std::fmt::Display| json!(value.to_string());
    match error {
        BgpvpnError::BgpvpnExists(id) | BgpvpnError::UnknownBgpvpn { id, .. } => text(id),
        BgpvpnError::UnknownNetwork(network)
        | BgpvpnError::AssociationExists { network, .. }
        | BgpvpnError::NoAssociation { network, .. }
        | BgpvpnError::NotVxlan { network, .. }
        | BgpvpnError::VniMismatch { network, .. } => text(network),
        BgpvpnError::UnknownSpeaker { id, .. } => text(id),
        BgpvpnError::UnknownAgent(host) => text(host),
        BgpvpnError::VniOutOfRange(value) | BgpvpnError::LocalPrefOutOfRange(value) => {
            json!(value)
        }
        // The value is not kept; the field (in the message) is what matters.
        BgpvpnError::Immutable(_) => Value::Null,
        BgpvpnError::BindingExists { bgpvpn, .. } | BgpvpnError::NoBinding { bgpvpn, .. } => {
            text(bgpvpn)
        }
        BgpvpnError::InvalidVtep(ip) => text(ip),
        BgpvpnError::InvalidMac(source) => model_value(source),
        BgpvpnError::InvalidDeviceIp { ip, .. } => text(ip),
    }
}

impl From<BgpvpnError> for NeutronError {
    fn from(error: BgpvpnError) -> Self {
        let message = error.to_string();
        let (kind, name) = match &error {
            BgpvpnError::UnknownBgpvpn { .. } => (ErrorKind::NotFound, "BGPVPNNotFound"),
            BgpvpnError::UnknownNetwork(_) => (ErrorKind::NotFound, "NetworkNotFound"),
            BgpvpnError::UnknownSpeaker { .. } => (ErrorKind::NotFound, "BgpSpeakerNotFound"),
            BgpvpnError::UnknownAgent(_) => (ErrorKind::NotFound, "AgentNotFound"),
            BgpvpnError::BgpvpnExists(_) => (ErrorKind::Conflict, "Conflict"),
            BgpvpnError::AssociationExists { .. } => {
                (ErrorKind::Conflict, "BGPVPNNetAssocAlreadyExists")
            }
            BgpvpnError::BindingExists { .. } => (ErrorKind::Conflict, "BgpSpeakerVpnBindingError"),
            BgpvpnError::NoAssociation { .. } | BgpvpnError::NoBinding { .. } => {
                (ErrorKind::NotFound, "HTTPNotFound")
            }
            _ => (ErrorKind::BadRequest, "HTTPBadRequest"),
        };
        NeutronError {
            kind,
            name,
            field: api_field(&message),
            value: Some(bgpvpn_value(&error)),
            message,
        }
    }
}
