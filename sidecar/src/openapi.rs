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
        api::groups::join,
        api::groups::leave,
        api::groups::list,
        api::groups::watch,
        api::locks::acquire,
        api::locks::release,
        api::locks::renew,
        api::locks::inspect,
        api::locks::semaphore_acquire,
        api::locks::semaphore_release,
        api::locks::semaphore_renew,
        api::locks::semaphore_inspect,
        api::elections::campaign,
        api::elections::resign,
        api::elections::leader,
        api::elections::watch,
        api::barriers::state,
        api::barriers::set,
        api::barriers::remove,
        api::barriers::wait,
        api::barriers::enter,
        api::barriers::leave,
        api::kv::get_key,
        api::kv::put,
        api::kv::delete,
        api::kv::watch,
    ),
    components(schemas(crate::error::ErrorBody, crate::error::Code)),
    tags(
        (name = "system", description = "health, readiness, metrics, this document"),
        (name = "leases", description = "app leases: what is taken under a lease is released when it lapses"),
        (name = "groups", description = "group membership"),
        (name = "locks", description = "shared/exclusive locks with fencing tokens"),
        (name = "semaphores", description = "N-permit semaphores with fencing tokens"),
        (name = "elections", description = "leader election with terms"),
        (name = "barriers", description = "barriers and double barriers"),
        (name = "kv", description = "versioned key/value with compare-and-set"),
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

#[cfg(test)]
mod shape {
    use utoipa::OpenApi;

    #[test]
    fn operation_ids_are_unique() {
        let doc = serde_json::to_value(super::ApiDoc::openapi()).unwrap();
        let mut seen = std::collections::BTreeSet::new();
        for (path, ops) in doc["paths"].as_object().unwrap() {
            for (method, op) in ops.as_object().unwrap() {
                let id = op["operationId"]
                    .as_str()
                    .unwrap_or_else(|| panic!("{method} {path} has no operationId"));
                assert!(seen.insert(id.to_string()), "operationId {id} is used twice");
            }
        }
        assert_eq!(seen.len(), 36);
    }
}
