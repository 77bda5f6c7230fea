//! Token authentication and the Neutron policy subset l2pop enforces.
//!
//! Tokens come from the configuration: one admin token and one token per project. A project
//! sees and changes only its own resources (others answer 404, as Neutron hides them), and may
//! not set admin-only attributes (`provider:*`, `binding:host_id`, a BGPVPN's route targets);
//! creating and deleting BGPVPNs is admin-only as in networking-bgpvpn's policy.

use std::collections::HashMap;

use crate::error::NeutronError;

/// Who is calling.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Caller {
    Admin,
    Project(String),
}

impl Caller {
    pub fn is_admin(&self) -> bool {
        matches!(self, Caller::Admin)
    }

    /// Whether the caller may see a resource owned by `project_id`.
    pub fn sees(&self, project_id: &str) -> bool {
        match self {
            Caller::Admin => true,
            Caller::Project(own) => own == project_id,
        }
    }

    /// 403 unless admin; `what` names the rule (`create_bgpvpn`, `provider:network_type`).
    pub fn require_admin(&self, what: &str) -> Result<(), NeutronError> {
        if self.is_admin() {
            Ok(())
        } else {
            Err(NeutronError::forbidden(format!(
                "rule:{what} is disallowed by policy (admin only)"
            ))
            .with_field(what))
        }
    }

    /// The project a new resource belongs to: the caller's own, or any for the admin.
    pub fn owning_project(
        &self,
        project_id: Option<&str>,
        tenant_id: Option<&str>,
    ) -> Result<String, NeutronError> {
        let requested = project_id.or(tenant_id);
        if let Some(project) = requested {
            if project.is_empty() {
                return Err(NeutronError::invalid(
                    "project_id",
                    project,
                    "may not be empty",
                ));
            }
            if project.chars().count() > crate::request::NAME_MAX_LEN {
                return Err(NeutronError::invalid(
                    "project_id",
                    project,
                    format!("exceeds maximum length of {}", crate::request::NAME_MAX_LEN),
                ));
            }
        }
        match (self, requested) {
            (Caller::Admin, Some(project)) => Ok(project.to_owned()),
            (Caller::Admin, None) => Ok("admin".to_owned()),
            (Caller::Project(own), None) => Ok(own.clone()),
            (Caller::Project(own), Some(project)) if project == own => Ok(own.clone()),
            (Caller::Project(_), Some(project)) => Err(NeutronError::invalid(
                "project_id",
                project,
                "differs from the authenticated project; that requires admin privileges",
            )),
        }
    }
}

/// The configured tokens.
#[derive(Clone, Debug, Default)]
pub struct Tokens {
    by_token: HashMap<String, Caller>,
}

impl Tokens {
    pub fn new(admin: &str, projects: &[(String, String)]) -> Self {
        let mut by_token = HashMap::new();
        by_token.insert(admin.to_owned(), Caller::Admin);
        for (project, token) in projects {
            by_token.insert(token.clone(), Caller::Project(project.clone()));
        }
        Tokens { by_token }
    }

    /// The caller a token stands for; 401 when absent or unknown.
    pub fn authenticate(&self, token: Option<&str>) -> Result<Caller, NeutronError> {
        token
            .and_then(|t| self.by_token.get(t))
            .cloned()
            .ok_or_else(NeutronError::unauthorized)
    }
}
