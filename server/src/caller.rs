//! Who a request is from and what that lets it do: the caller's account,
//! role, device and grids, and a device's wipe. A leaf of the server's
//! modules: the HTTP extractor (`auth`), the storage and the trust
//! boundary's rules (`decide`) all use it, and it uses none of them.

use fieldgrid_protocol::Role;

use crate::error::{ApiError, ApiResult};

/// How a device is to be wiped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WipeMode {
    /// Erase the store, its keys and photos at the next contact.
    Wipe,
    /// Push what is waiting first (a phone being retired), then erase.
    SendThenWipe,
}

impl WipeMode {
    /// The stored name.
    pub fn as_str(&self) -> &'static str {
        match self {
            WipeMode::Wipe => "wipe",
            WipeMode::SendThenWipe => "send_then_wipe",
        }
    }

    /// The mode of a stored name.
    pub fn parse(s: &str) -> Option<WipeMode> {
        match s {
            "wipe" => Some(WipeMode::Wipe),
            "send_then_wipe" => Some(WipeMode::SendThenWipe),
            _ => None,
        }
    }
}

/// The authenticated caller of a request (made by `auth` from its token).
#[derive(Clone, Debug)]
pub struct Caller {
    /// Account id.
    pub account_id: String,
    /// Role.
    pub role: Role,
    /// Device the token was issued to.
    pub device_id: String,
    /// Grids assigned (workers).
    pub grids: Vec<String>,
    /// Grids taken away recently: still writable, no longer readable.
    pub draining: Vec<String>,
    /// The department of a department account.
    pub department: Option<String>,
    /// A remote wipe asked of the caller's device.
    pub wipe: Option<WipeMode>,
}

impl Caller {
    /// Whether the caller may read and write `grid_id`.
    pub fn may_access(&self, grid_id: &str) -> bool {
        self.role == Role::Operator || self.grids.iter().any(|g| g == grid_id)
    }

    /// Whether the caller may send operations on `grid_id`.
    pub fn may_write(&self, grid_id: &str) -> bool {
        self.may_access(grid_id) || self.draining.iter().any(|g| g == grid_id)
    }

    /// The grids whose records the caller may send: assigned, or recently
    /// taken away.
    pub fn writable_grids(&self) -> Vec<String> {
        self.grids.iter().chain(&self.draining).cloned().collect()
    }

    /// Refuses anyone but a centre operator.
    pub fn require_operator(&self) -> ApiResult<()> {
        self.require(&[Role::Operator])
    }

    /// Refuses anyone whose role is not one of `roles`.
    pub fn require(&self, roles: &[Role]) -> ApiResult<()> {
        if roles.contains(&self.role) {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!("not for a {} account", self.role.as_str())))
        }
    }
}
