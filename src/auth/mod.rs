//! Authentication: the accounts a client can bind as, how their
//! passwords are stored and checked ([`password`]), and who may do what
//! once bound (administrators).
//!
//! A sharp part, kept small and apart. Read by the bind operation on the
//! worker threads and by the daemon when it loads the configuration. It
//! imports only the directory's DNs: never the protocol, the operations
//! or the server.

pub mod backoff;
pub mod helper;
pub mod moderation;
pub mod ntlm;
pub mod password;
pub mod smbpasswd;

use std::sync::Arc;

use crate::directory::dn::Dn;
pub use password::Password;
pub use smbpasswd::NtAccounts;

/// What an NTLM logon proves (`ntlm`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum NtlmMode {
    /// The logon completes whatever the password, and the session stays
    /// anonymous: the TAPI Dialer works, and proves nothing. The default
    /// without accounts.
    #[default]
    AcceptAny,
    /// The responses are checked against the accounts: a logon is a
    /// verified identity or invalidCredentials. The default with accounts.
    Verify,
    /// NTLM is refused (authMethodNotSupported) and not announced.
    Off,
}

/// How NTLM logons are answered.
#[derive(Clone, Debug)]
pub struct NtlmPolicy {
    pub mode: NtlmMode,
    pub accounts: Arc<NtAccounts>,
    /// Pass-through to a domain for NTLM responses (`ntlm-helper`), and
    /// for the passwords of simple binds as a Windows user.
    pub helper: Option<Arc<helper::HelperPool>>,
    pub basic_helper: Option<Arc<helper::HelperPool>>,
    pub names: ntlm::Names,
    /// Whether NTLMv1 responses are taken (`ntlm-v1`).
    pub allow_v1: bool,
}

impl Default for NtlmPolicy {
    fn default() -> NtlmPolicy {
        NtlmPolicy {
            mode: NtlmMode::AcceptAny,
            accounts: Arc::default(),
            helper: None,
            basic_helper: None,
            names: ntlm::Names::new(None, None),
            allow_v1: false,
        }
    }
}

/// The authorization ID of a user verified by NTLM: `u:DOMAIN\name`.
pub fn user_identity(domain: &str, user: &str) -> String {
    format!("u:{}\\{}", domain.to_lowercase(), user.to_lowercase())
}

/// An account for simple binds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Account {
    /// The normalised DN.
    pub key: Vec<u8>,
    pub password: Password,
}

/// The authorization ID (RFC 4513 section 5.2.1.8) of a session bound as
/// the account of a normalised DN: what WhoAmI answers and what owns the
/// entries the session registers.
pub fn dn_identity(key: &[u8]) -> String {
    format!("dn:{}", String::from_utf8_lossy(key))
}

/// Reads an administrator as the configuration names one: a DN (`cn=admin,
/// o=Intranet`), or a user name of a Windows domain (`DOMAIN\name`, matched
/// without regard to case). Returns its authorization ID.
pub fn admin_identity(text: &str) -> Result<String, String> {
    let text = text.trim();
    if text.contains('\\') || !text.contains('=') {
        if text.is_empty() {
            return Err("an administrator needs a name".into());
        }
        return Ok(format!("u:{}", text.to_lowercase()));
    }
    let dn = Dn::parse(text.as_bytes()).map_err(|_| format!("'{text}' is not a DN"))?;
    Ok(dn_identity(&dn.key()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn administrators_are_read_as_authorization_ids() {
        assert_eq!(
            admin_identity("cn=Admin, o=Intranet").unwrap(),
            "dn:cn=admin,o=intranet"
        );
        assert_eq!(
            admin_identity("EXAMPLE\\Alice").unwrap(),
            "u:example\\alice"
        );
        assert!(admin_identity("").is_err());
    }
}
