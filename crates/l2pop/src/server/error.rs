//! The HTTP edge of a refusal: each [`ErrorKind`] has one status, and every refused request is
//! answered with Neutron's error body (`{"NeutronError": {"type", "message", "detail"}}` plus
//! `field` and `value`). The RPC edge maps the same errors in `super::rpc`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
pub use l2pop_neutron::{ErrorKind, NeutronError};

/// The status a kind of refusal is answered with.
pub fn status(kind: ErrorKind) -> StatusCode {
    match kind {
        ErrorKind::BadRequest => StatusCode::BAD_REQUEST,
        ErrorKind::Unauthorized => StatusCode::UNAUTHORIZED,
        ErrorKind::Forbidden => StatusCode::FORBIDDEN,
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::Conflict => StatusCode::CONFLICT,
        ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
    }
}

/// The answer to a refused request.
pub fn response(error: &NeutronError) -> Response {
    (status(error.kind), axum::Json(error.body())).into_response()
}

/// An answer about the request itself rather than a resource (no such route, a method the route
/// does not take, a body over the limit), in Neutron's body with webob's exception name for the
/// status.
pub fn http(status: StatusCode, message: impl Into<String>) -> Response {
    let name = match status {
        StatusCode::NOT_FOUND => "HTTPNotFound",
        StatusCode::METHOD_NOT_ALLOWED => "HTTPMethodNotAllowed",
        StatusCode::PAYLOAD_TOO_LARGE => "HTTPRequestEntityTooLarge",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "HTTPUnsupportedMediaType",
        StatusCode::REQUEST_TIMEOUT => "HTTPRequestTimeout",
        status if status.is_server_error() => "HTTPInternalServerError",
        _ => "HTTPBadRequest",
    };
    // The kind only picks a status, which is given: any kind serves for the body.
    let error = NeutronError::new(ErrorKind::BadRequest, name, message);
    (status, axum::Json(error.body())).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_its_own_status() {
        let kinds = [
            ErrorKind::BadRequest,
            ErrorKind::Unauthorized,
            ErrorKind::Forbidden,
            ErrorKind::NotFound,
            ErrorKind::Conflict,
            ErrorKind::Unavailable,
        ];
        let statuses: std::collections::BTreeSet<u16> =
            kinds.iter().map(|k| status(*k).as_u16()).collect();
        assert_eq!(statuses.len(), kinds.len());
        assert_eq!(status(ErrorKind::NotFound), StatusCode::NOT_FOUND);
    }
}
