//! The OpenAPI document, generated from the handlers' `#[utoipa::path]`
//! attributes and the request/response types. Served at `GET /openapi.json`
//! and checked in as `sidecar/openapi.json` (a test fails when it is stale;
//! `UPDATE_OPENAPI=1 cargo nextest run -p zonekeeper-sidecar openapi` rewrites it).

use utoipa::OpenApi;

use crate::api;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "zonekeeper sidecar",
        description = "Localhost HTTP API for membership, locks, semaphores, elections, barriers, key/value and watches. Reference and curl walk-through: docs/sidecar.md.",
        license(name = "Apache-2.0")
    ),
    paths(
        api::system::healthz,
        api::system::readyz,
        api::system::metrics,
        api::system::openapi,
        api::system::holdings,
        api::leases::create,
        api::leases::list,
        api::leases::show,
        api::leases::renew,
        api::leases::revoke,
    ),
    components(schemas(crate::error::ErrorBody, crate::error::Code)),
    tags(
        (name = "system", description = "health, readiness, metrics, this document"),
        (name = "leases", description = "app leases: what is taken under a lease is released when it lapses"),
    )
)]
pub struct ApiDoc;

/// The document as pretty JSON (what is checked in).
pub fn json() -> String {
    ApiDoc::openapi()
        .to_pretty_json()
        .expect("the OpenAPI document serializes")
        + "\n"
}

#[cfg(test)]
mod tests {
    #[test]
    fn checked_in_openapi_json_is_current() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.json");
        let now = super::json();
        if std::env::var_os("UPDATE_OPENAPI").is_some() {
            std::fs::write(path, &now).unwrap();
            return;
        }
        let checked_in = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            checked_in == now,
            "sidecar/openapi.json is stale; regenerate it with \
             `UPDATE_OPENAPI=1 cargo nextest run -p zonekeeper-sidecar openapi` and commit it"
        );
    }
}
