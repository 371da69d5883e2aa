//! Bind (RFC 4511 section 4.2, [MS-TAIL] 3.5.2): LDAPv2 and LDAPv3,
//! anonymous or simple with an account from the configuration.

use ldap3_proto::LdapResultCode;

use crate::dn::Dn;
use crate::handler::{Session, Shared};
use crate::wire::{BindAuth, LdapResult, Responder, tag};

pub fn bind(
    shared: &Shared,
    session: &mut Session,
    version: i64,
    name: &[u8],
    auth: BindAuth,
    resp: &mut Responder<'_>,
) {
    let result = check(shared, session, version, name, auth);
    resp.result(tag::BIND, &result);
}

fn check(
    shared: &Shared,
    session: &mut Session,
    version: i64,
    name: &[u8],
    auth: BindAuth,
) -> LdapResult {
    // Any bind first ends the previous authentication.
    session.bound = None;
    if version != 2 && version != 3 {
        return LdapResult::new(LdapResultCode::ProtocolError, "LDAP version 2 or 3 only");
    }
    let password = match auth {
        BindAuth::Simple(password) => password,
        BindAuth::Sasl(mechanism) => {
            return LdapResult::new(
                LdapResultCode::AuthMethodNotSupported,
                format!(
                    "SASL mechanism {} is not supported",
                    String::from_utf8_lossy(&mechanism)
                ),
            );
        }
        BindAuth::Other => {
            return LdapResult::new(
                LdapResultCode::AuthMethodNotSupported,
                "only simple binds are supported",
            );
        }
    };
    // An empty password is an anonymous bind whatever the name
    // (RFC 4513 section 5.1.2); ILS clients send it with LDAPv2.
    if password.is_empty() {
        return LdapResult::success();
    }
    let Ok(dn) = Dn::parse(name) else {
        return LdapResult::new(LdapResultCode::InvalidDNSyntax, "invalid DN syntax");
    };
    let key = dn.key();
    let limits = shared.limits.read();
    let known = limits
        .accounts
        .iter()
        .any(|a| a.key == key && constant_time_eq(&a.password, &password));
    if known {
        session.bound = Some(name.to_vec());
        LdapResult::success()
    } else {
        LdapResult::new(LdapResultCode::InvalidCredentials, "invalid credentials")
    }
}

/// Compares without stopping at the first difference, so that response
/// times say nothing about how much of a password was right.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
