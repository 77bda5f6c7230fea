//! The API's error: an HTTP status and Neutron's error body
//! (`{"NeutronError": {"type", "message", "detail"}}`), plus the offending `field` and `value` so
//! that a client (and an operator reading a log) sees exactly what was refused.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use l2pop_bgpvpn::BgpvpnError;
use l2pop_engine::EventError;
use l2pop_model::ModelError;
use serde_json::{Value, json};

/// A refused request. Nothing was changed.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub status: StatusCode,
    /// Neutron's exception name (`NetworkNotFound`, `MacAddressInUse`, `HTTPBadRequest`, ...).
    pub kind: &'static str,
    pub message: String,
    pub field: Option<String>,
    pub value: Option<Value>,
}

impl ApiError {
    fn new(status: StatusCode, kind: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            kind,
            message: message.into(),
            field: None,
            value: None,
        }
    }

    /// 400: `field` has an unacceptable `value`.
    pub fn invalid(field: &str, value: impl Into<Value>, reason: impl std::fmt::Display) -> Self {
        let value = value.into();
        ApiError {
            field: Some(field.to_owned()),
            message: format!("Invalid input for {field}. Reason: {value} {reason}."),
            value: Some(value),
            ..ApiError::new(StatusCode::BAD_REQUEST, "HTTPBadRequest", "")
        }
    }

    /// 400 about the request as a whole (malformed JSON, missing body key).
    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, "HTTPBadRequest", message)
    }

    /// 404, as Neutron answers for a resource that does not exist or that the caller may not see.
    pub fn not_found(resource: &str, id: impl std::fmt::Display) -> Self {
        let kind = match resource {
            "network" => "NetworkNotFound",
            "subnet" => "SubnetNotFound",
            "port" => "PortNotFound",
            "agent" => "AgentNotFound",
            "bgpvpn" => "BGPVPNNotFound",
            "network_association" => "BGPVPNNetAssocNotFound",
            "bgp_speaker" => "BgpSpeakerNotFound",
            _ => "HTTPNotFound",
        };
        let mut error = ApiError::new(
            StatusCode::NOT_FOUND,
            kind,
            format!("{resource} {id} could not be found."),
        );
        error.field = Some("id".to_owned());
        error.value = Some(Value::String(id.to_string()));
        error
    }

    /// An answer about the request itself rather than a resource (no such route, a method the
    /// route does not take, a body over the limit), in Neutron's body with webob's exception
    /// name for the status.
    pub fn http(status: StatusCode, message: impl Into<String>) -> Self {
        let kind = match status {
            StatusCode::NOT_FOUND => "HTTPNotFound",
            StatusCode::METHOD_NOT_ALLOWED => "HTTPMethodNotAllowed",
            StatusCode::PAYLOAD_TOO_LARGE => "HTTPRequestEntityTooLarge",
            StatusCode::UNSUPPORTED_MEDIA_TYPE => "HTTPUnsupportedMediaType",
            StatusCode::REQUEST_TIMEOUT => "HTTPRequestTimeout",
            status if status.is_server_error() => "HTTPInternalServerError",
            _ => "HTTPBadRequest",
        };
        ApiError::new(status, kind, message)
    }

    /// 409: the request conflicts with the current state.
    pub fn conflict(kind: &'static str, message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::CONFLICT, kind, message)
    }

    /// 403: the caller's token does not allow this.
    pub fn forbidden(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::FORBIDDEN, "PolicyNotAuthorized", message)
    }

    /// 401: no token, or an unknown one.
    pub fn unauthorized() -> Self {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "HTTPUnauthorized",
            "Authentication required: send a valid token in X-Auth-Token.",
        )
    }

    /// 503: the server cannot take changes now (standing by, or its store failed).
    pub fn unavailable(message: impl Into<String>) -> Self {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "ServiceUnavailable",
            message,
        )
    }

    pub fn with_field(mut self, field: &str) -> Self {
        self.field = Some(field.to_owned());
        self
    }

    pub fn body(&self) -> Value {
        let mut inner = json!({
            "type": self.kind,
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

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.status.as_u16(),
            self.kind,
            self.message
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, axum::Json(self.body())).into_response()
    }
}

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

impl From<EventError> for ApiError {
    fn from(error: EventError) -> Self {
        let (status, kind) = match &error {
            EventError::UnknownNetwork { .. } => (StatusCode::NOT_FOUND, "NetworkNotFound"),
            EventError::UnknownPort(_) => (StatusCode::NOT_FOUND, "PortNotFound"),
            EventError::UnknownRouter(_) => (StatusCode::NOT_FOUND, "RouterNotFound"),
            EventError::NetworkExists(_) | EventError::PortExists(_) => {
                (StatusCode::CONFLICT, "Conflict")
            }
            EventError::SegmentInUse { .. } | EventError::FlatNetworkInUse { .. } => {
                (StatusCode::CONFLICT, "SegmentationIdInUse")
            }
            EventError::MacInUse { .. } => (StatusCode::CONFLICT, "MacAddressInUse"),
            EventError::IpInUse { .. } => (StatusCode::CONFLICT, "IpAddressInUse"),
            EventError::NetworkInUse { .. } => (StatusCode::CONFLICT, "NetworkInUse"),
            EventError::MacChangeOnActivePort(_) => (StatusCode::CONFLICT, "PortBound"),
            EventError::TunnelingIpInUse { .. } => (StatusCode::CONFLICT, "Conflict"),
            _ => (StatusCode::BAD_REQUEST, "HTTPBadRequest"),
        };
        let message = error.to_string();
        ApiError {
            status,
            kind,
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
        EventError::SegmentInUse {
            segmentation_id, ..
        } => Some(json!(segmentation_id)),
        EventError::FlatNetworkInUse {
            physical_network, ..
        } => Some(json!(physical_network)),
        EventError::SubnetOverlap { cidr, .. } => text(cidr),
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

impl From<BgpvpnError> for ApiError {
    fn from(error: BgpvpnError) -> Self {
        let message = error.to_string();
        let (status, kind) = match &error {
            BgpvpnError::UnknownBgpvpn { .. } => (StatusCode::NOT_FOUND, "BGPVPNNotFound"),
            BgpvpnError::UnknownNetwork(_) => (StatusCode::NOT_FOUND, "NetworkNotFound"),
            BgpvpnError::UnknownSpeaker { .. } => (StatusCode::NOT_FOUND, "BgpSpeakerNotFound"),
            BgpvpnError::UnknownAgent(_) => (StatusCode::NOT_FOUND, "AgentNotFound"),
            BgpvpnError::BgpvpnExists(_) => (StatusCode::CONFLICT, "Conflict"),
            BgpvpnError::AssociationExists { .. } => {
                (StatusCode::CONFLICT, "BGPVPNNetAssocAlreadyExists")
            }
            BgpvpnError::BindingExists { .. } => {
                (StatusCode::CONFLICT, "BgpSpeakerVpnBindingError")
            }
            BgpvpnError::NoAssociation { .. } | BgpvpnError::NoBinding { .. } => {
                (StatusCode::NOT_FOUND, "HTTPNotFound")
            }
            _ => (StatusCode::BAD_REQUEST, "HTTPBadRequest"),
        };
        ApiError {
            status,
            kind,
            field: api_field(&message),
            value: Some(bgpvpn_value(&error)),
            message,
        }
    }
}
