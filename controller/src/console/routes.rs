//! Every console route and the one permission it needs, in one table ([`CONSOLE_ROUTES`],
//! the console's twin of `policy::roles::ADMIN_RPCS`). The router is built only through
//! [`Routes`], which records what it adds, and a test checks that the router and the table
//! hold the same routes; `guard.rs` refuses a route missing from the table to everyone.

use super::{
    Shared, actions, agents, assets, audit, enrol, events, guard, handlers, incidents, invite,
    live, live_incidents, playbooks, rules, users,
};
use crate::policy::roles::Permission;
use axum::handler::Handler;
use axum::routing::{MethodRouter, get, post};
use http::Method;
use std::sync::Arc;

/// What a route needs of its caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// Nothing: the sign-in page and the assets, reachable before signing in.
    Public,
    /// A live session whose person holds this permission.
    Permission(Permission),
}

use Need::{Permission as P, Public};

/// Every route (method, path as the router writes it) and what it needs.
pub const CONSOLE_ROUTES: &[(&str, &str, Need)] = &[
    ("GET", "/login", Public),
    ("POST", "/login", Public),
    ("GET", "/assets/{name}", Public),
    ("POST", "/logout", P(Permission::OwnCredential)),
    ("GET", "/", P(Permission::Read)),
    ("GET", "/live/overview", P(Permission::Read)),
    ("GET", "/agents", P(Permission::Read)),
    ("GET", "/agents/{id}", P(Permission::Read)),
    ("POST", "/agents/{id}/labels", P(Permission::ManageAgents)),
    ("GET", "/agents/{id}/{action}", P(Permission::Respond)),
    ("POST", "/agents/{id}/{action}", P(Permission::Respond)),
    ("GET", "/enrol", P(Permission::ManageAgents)),
    ("POST", "/enrol", P(Permission::ManageAgents)),
    ("GET", "/approvals", P(Permission::Read)),
    ("POST", "/approvals/{id}/decide", P(Permission::Approve)),
    ("GET", "/live/approvals", P(Permission::Read)),
    ("GET", "/incidents", P(Permission::Read)),
    ("GET", "/live/incidents", P(Permission::Read)),
    ("GET", "/incidents/{id}", P(Permission::Read)),
    ("GET", "/live/incidents/{id}", P(Permission::Read)),
    ("GET", "/incidents/{id}/report.md", P(Permission::Read)),
    ("GET", "/incidents/{id}/report.json", P(Permission::Read)),
    ("POST", "/incidents/{id}/note", P(Permission::Triage)),
    ("POST", "/incidents/{id}/status", P(Permission::Triage)),
    ("POST", "/incidents/{id}/severity", P(Permission::Triage)),
    ("GET", "/events", P(Permission::Read)),
    ("GET", "/agents/{id}/tree", P(Permission::Read)),
    ("GET", "/invite", Public),
    ("POST", "/invite", Public),
    ("GET", "/rules", P(Permission::Read)),
    (
        "POST",
        "/rules/{id}/enabled",
        P(Permission::ManageDetection),
    ),
    ("POST", "/rules/upload", P(Permission::ManageDetection)),
    ("POST", "/rules/test", P(Permission::Read)),
    ("GET", "/playbooks", P(Permission::Read)),
    (
        "POST",
        "/playbooks/{name}/enabled",
        P(Permission::ManageDetection),
    ),
    (
        "POST",
        "/playbooks/{name}/dry-run",
        P(Permission::ManageDetection),
    ),
    ("GET", "/audit", P(Permission::Read)),
    ("POST", "/audit/verify", P(Permission::Read)),
    ("GET", "/users", P(Permission::ManageUsers)),
    ("POST", "/users/invite", P(Permission::ManageUsers)),
    ("POST", "/users/{name}/state", P(Permission::ManageUsers)),
    ("POST", "/users/{name}/role", P(Permission::ManageUsers)),
];

/// What the route `method path` needs; `None` for a route not in the table.
pub fn need(method: &Method, path: &str) -> Option<Need> {
    CONSOLE_ROUTES
        .iter()
        .find(|(m, p, _)| *m == method.as_str() && *p == path)
        .map(|(_, _, n)| *n)
}

/// A router under construction that remembers each route it was given.
pub struct Routes {
    router: axum::Router<Arc<Shared>>,
    added: Vec<(Method, &'static str)>,
}

impl Routes {
    fn new() -> Self {
        Self {
            router: axum::Router::new(),
            added: Vec::new(),
        }
    }

    fn get<H: Handler<T, Arc<Shared>>, T: 'static>(self, path: &'static str, h: H) -> Self {
        self.add(Method::GET, path, get(h))
    }

    fn post<H: Handler<T, Arc<Shared>>, T: 'static>(self, path: &'static str, h: H) -> Self {
        self.add(Method::POST, path, post(h))
    }

    fn add(mut self, m: Method, path: &'static str, r: MethodRouter<Arc<Shared>>) -> Self {
        self.added.push((m, path));
        self.router = self.router.route(path, r);
        self
    }
}

/// Every route and its handler.
fn routes() -> Routes {
    Routes::new()
        .get("/login", handlers::login_page)
        .post("/login", handlers::sign_in)
        .get("/assets/{name}", assets::asset)
        .post("/logout", handlers::sign_out)
        .get("/", handlers::overview)
        .get("/live/overview", live::overview_events)
        .get("/agents", agents::list)
        .get("/agents/{id}", agents::page)
        .post("/agents/{id}/labels", agents::set_labels)
        .get("/agents/{id}/{action}", actions::confirm)
        .post("/agents/{id}/{action}", actions::act)
        .get("/enrol", enrol::form)
        .post("/enrol", enrol::create)
        .get("/approvals", handlers::approvals)
        .post("/approvals/{id}/decide", handlers::decide)
        .get("/live/approvals", live_incidents::approvals_events)
        .get("/incidents", incidents::list)
        .get("/live/incidents", live_incidents::incidents_events)
        .get("/incidents/{id}", incidents::show)
        .get("/live/incidents/{id}", live_incidents::timeline_events)
        .get("/incidents/{id}/report.md", incidents::report_md)
        .get("/incidents/{id}/report.json", incidents::report_json)
        .post("/incidents/{id}/note", incidents::note)
        .post("/incidents/{id}/status", incidents::status)
        .post("/incidents/{id}/severity", incidents::severity)
        .get("/events", events::search)
        .get("/agents/{id}/tree", incidents::tree)
        .get("/invite", invite::invite_page)
        .post("/invite", invite::accept)
        .get("/rules", rules::rules)
        .post("/rules/{id}/enabled", rules::set_enabled)
        .post("/rules/upload", rules::upload)
        .post("/rules/test", rules::test)
        .get("/playbooks", playbooks::playbooks)
        .post("/playbooks/{name}/enabled", playbooks::set_enabled)
        .post("/playbooks/{name}/dry-run", playbooks::set_dry_run)
        .get("/audit", audit::audit)
        .post("/audit/verify", audit::verify)
        .get("/users", users::users)
        .post("/users/invite", users::invite)
        .post("/users/{name}/state", users::set_state)
        .post("/users/{name}/role", users::set_role)
}

/// The console's router: the routes behind the guard, the security headers on everything.
pub fn router(shared: Arc<Shared>) -> axum::Router {
    routes()
        .router
        .route_layer(axum::middleware::from_fn_with_state(
            shared.clone(),
            guard::guard,
        ))
        .fallback(handlers::not_found)
        .layer(axum::middleware::from_fn(guard::headers))
        .with_state(shared)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn every_route_of_the_router_is_in_the_table_once() {
        let added: HashSet<(String, &str)> = routes()
            .added
            .into_iter()
            .map(|(m, p)| (m.to_string(), p))
            .collect();
        let table: HashSet<(String, &str)> = CONSOLE_ROUTES
            .iter()
            .map(|(m, p, _)| (m.to_string(), *p))
            .collect();
        assert_eq!(
            table.len(),
            CONSOLE_ROUTES.len(),
            "a route is in the table twice"
        );
        assert_eq!(added, table);
    }

    #[test]
    fn only_sign_in_invites_and_assets_are_public_and_deciding_needs_approve() {
        for (m, p, n) in CONSOLE_ROUTES {
            let public = *p == "/login" || *p == "/invite" || p.starts_with("/assets/");
            assert_eq!(*n == Public, public, "{m} {p}");
        }
        assert_eq!(
            need(&Method::POST, "/approvals/{id}/decide"),
            Some(P(Permission::Approve))
        );
        assert_eq!(need(&Method::DELETE, "/"), None);
        assert_eq!(
            need(&Method::POST, "/agents/{id}/{action}"),
            Some(P(Permission::Respond))
        );
        assert_eq!(
            need(&Method::POST, "/agents/{id}/labels"),
            Some(P(Permission::ManageAgents))
        );
        for change in ["note", "status", "severity"] {
            let route = format!("/incidents/{{id}}/{change}");
            assert_eq!(need(&Method::POST, &route), Some(P(Permission::Triage)));
        }
        for (m, p) in [("GET", "/users"), ("POST", "/users/{name}/role")] {
            let m = Method::from_bytes(m.as_bytes()).unwrap();
            assert_eq!(need(&m, p), Some(P(Permission::ManageUsers)));
        }
        assert_eq!(
            need(&Method::POST, "/rules/{id}/enabled"),
            Some(P(Permission::ManageDetection))
        );
    }
}
