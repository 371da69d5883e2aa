//! Names: the DN forms ILS clients write, resolved to the entries they
//! name ([`target`]), and the names of application entries. Runs on the
//! worker threads.

use ldap3_proto::LdapResultCode;

use crate::directory::dn::{Dn, Rdn};
use crate::directory::schema::{self, Attr, attr};
use crate::protocol::LdapResult;

/// The entry a request names, after the dialect has rewritten its DN.
#[derive(Debug, Clone)]
pub struct Target {
    pub dn: Dn,
    /// The normalised key.
    pub key: Vec<u8>,
    /// The DN to store and return: as the client wrote it, or the
    /// canonical form of a short-form name.
    pub written: Vec<u8>,
    /// The object class a short-form DN carries (`objectClass=rtPerson`).
    pub class: Option<&'static str>,
}

impl Target {
    fn new(dn: Dn, written: Vec<u8>, class: Option<&'static str>) -> Target {
        Target {
            key: dn.key(),
            dn,
            written,
            class,
        }
    }

    /// Where the parent's key starts inside the key.
    pub fn parent_at(&self) -> usize {
        self.key.len() - self.dn.parent().key().len()
    }
}

/// Whether a DN uses the leniency of RFC 1779 that RFC 4514 has dropped:
/// quotes, `;` between RDNs, or spaces around a separator or at either
/// end (`cn= egruber]w2kils...`, as the Dialer writes, [MS-TAIL] 4.5.2),
/// or a backslash before neither a special character nor a hex pair.
/// Such a DN is stored in RFC 4514 form, so that the entries clients get
/// back have names every LDAPv3 parser reads.
fn loose(dn: &[u8]) -> bool {
    let separator = |b: Option<&u8>| matches!(b, Some(b',' | b'=' | b';') | None);
    let mut escaped = false;
    for (i, &b) in dn.iter().enumerate() {
        if escaped {
            escaped = false;
            continue;
        }
        match b {
            b'\\' => {
                let next = dn.get(i + 1);
                let hex_pair = next.is_some_and(u8::is_ascii_hexdigit)
                    && dn.get(i + 2).is_some_and(u8::is_ascii_hexdigit);
                if !hex_pair && !next.is_some_and(|b| b"\\\",+;<>=# ".contains(b)) {
                    return true;
                }
                escaped = true;
            }
            b'"' | b';' => return true,
            b' ' if separator(i.checked_sub(1).and_then(|p| dn.get(p)))
                || separator(dn.get(i + 1)) =>
            {
                return true;
            }
            _ => {}
        }
    }
    false
}

pub(super) fn invalid_dn() -> LdapResult {
    LdapResult::new(LdapResultCode::InvalidDNSyntax, "invalid DN syntax")
}

fn is_attr(rdn: &Rdn, name: &[u8]) -> bool {
    rdn.attr == Attr::from_name(name)
}

/// Resolves a DN, rewriting the ILS short forms.
///
/// A DN under `o=Intranet` is taken as it is. Otherwise, a DN that carries
/// an `objectClass=` RDN, or that is a `cn=`/`uid=` with only `c=`/`o=`
/// RDNs around it, is a short form: its class (rtPerson when none is given)
/// and its name select the entry `cn=NAME,ou=Dynamic,o=Intranet`
/// (`cn=NAME,appName=APP,ou=Applications,o=Intranet` for an application
/// user), whatever the order, case and spacing of its RDNs.
pub fn target(input: &[u8]) -> Result<Target, LdapResult> {
    let dn = Dn::parse(input).map_err(|_| invalid_dn())?;
    let under_suffix = dn
        .rdns
        .last()
        .is_some_and(|r| r.attr == attr::O && r.value.eq_ignore_ascii_case(b"Intranet"));
    let has_class = dn.rdns.iter().any(|r| r.attr == attr::OBJECT_CLASS);
    let name_rdn = dn
        .rdns
        .iter()
        .find(|r| r.attr == attr::CN || r.attr == attr::UID);
    let only_decoration = dn
        .rdns
        .iter()
        .all(|r| [attr::CN, attr::UID, attr::C, attr::O, attr::OBJECT_CLASS].contains(&r.attr));
    if dn.is_root() || under_suffix || !(has_class || (name_rdn.is_some() && only_decoration)) {
        let written = match loose(input) {
            true => dn.to_bytes(),
            false => input.to_vec(),
        };
        return Ok(Target::new(dn, written, None));
    }
    let class = match dn.rdns.iter().find(|r| r.attr == attr::OBJECT_CLASS) {
        Some(r) => Some(
            [
                schema::RT_PERSON,
                schema::RT_APPLICATION_USER,
                schema::RT_CONFERENCE,
            ]
            .into_iter()
            .find(|c| c.as_bytes().eq_ignore_ascii_case(&r.value))
            .ok_or_else(|| LdapResult::new(LdapResultCode::NoSuchObject, "no such object class"))?,
        ),
        None => Some(schema::RT_PERSON),
    };
    let Some(name) = name_rdn else {
        return Err(invalid_dn());
    };
    let name = Rdn {
        attr: name.attr.clone(),
        value: trailing_spaces_off(&name.value).to_vec(),
    };
    let text = |s: &str| s.as_bytes().to_vec();
    let mut rdns = vec![name];
    if class == Some(schema::RT_APPLICATION_USER) {
        let app = dn
            .rdns
            .iter()
            .find(|r| is_attr(r, b"appName"))
            .map_or_else(|| text("MS-NetMeeting"), |r| r.value.clone());
        rdns.push(Rdn {
            attr: attr::APP_NAME,
            value: app,
        });
        rdns.push(Rdn {
            attr: attr::OU,
            value: text("Applications"),
        });
    } else {
        rdns.push(Rdn {
            attr: attr::OU,
            value: text("Dynamic"),
        });
    }
    rdns.push(Rdn {
        attr: attr::O,
        value: text("Intranet"),
    });
    let dn = Dn::from_rdns(rdns);
    let written = dn.to_bytes();
    Ok(Target::new(dn, written, class))
}

/// A name without the spaces around it, written plain or as `%20`:
/// NetMeeting's Delete names `cn=egruber@contoso.com%20` ([MS-TAIL]
/// 4.4.2). Any other `%` is the name's own (`user%host@relay` is an
/// e-mail address), kept as sent.
fn trailing_spaces_off(mut value: &[u8]) -> &[u8] {
    loop {
        value = crate::directory::filter::trim_spaces(value);
        match value.strip_suffix(b"%20") {
            Some(rest) => value = rest,
            None => return value,
        }
    }
}

/// The DN of a person's application entry.
pub fn application_dn(cn: &[u8], app: &[u8]) -> Target {
    let text = |s: &str| s.as_bytes().to_vec();
    let dn = Dn::from_rdns(vec![
        Rdn {
            attr: attr::CN,
            value: cn.to_vec(),
        },
        Rdn {
            attr: attr::APP_NAME,
            value: app.to_vec(),
        },
        Rdn {
            attr: attr::OU,
            value: text("Applications"),
        },
        Rdn {
            attr: attr::O,
            value: text("Intranet"),
        },
    ]);
    let written = dn.to_bytes();
    Target::new(dn, written, Some(schema::RT_APPLICATION_USER))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key_of(dn: &[u8]) -> Vec<u8> {
        target(dn).unwrap().key
    }

    #[test]
    fn every_netmeeting_dn_form_names_one_person() {
        let want = b"cn=egruber@contoso.com,ou=dynamic,o=intranet".to_vec();
        for dn in [
            &b"c=-,o=Microsoft,cn=egruber@contoso.com,objectClass=rtPerson"[..],
            b"c=-,o=Microsoft, cn=egruber@contoso.com, objectClass=rtPerson",
            b"c=-, o=Microsoft, mailto:cn=egruber@contoso.com%20, objectClass=rtPerson",
            b"cn=EGRUBER@contoso.com,objectclass=RTPerson",
            b"objectClass=rtPerson,cn=egruber@contoso.com,o=Other,c=US",
            b"o=Microsoft,cn=egruber@contoso.com",
            b"cn=egruber@contoso.com,ou=Dynamic,o=Intranet",
            b"CN=egruber@contoso.com, OU=dynamic, O=intranet",
        ] {
            assert_eq!(key_of(dn), want, "{}", String::from_utf8_lossy(dn));
        }
        let t = target(b"c=-,o=Microsoft,cn=Eric@X.com,objectClass=rtPerson").unwrap();
        assert_eq!(t.written, b"cn=Eric@X.com,ou=Dynamic,o=Intranet");
        assert_eq!(t.class, Some(schema::RT_PERSON));
        // A full DN with a backslash that escapes nothing is written the
        // RFC 4514 way; one with RFC 4514 escapes only is kept.
        let t = target(br"cn=back\slash,ou=Dynamic,o=Intranet").unwrap();
        assert_eq!(t.written, br"cn=back\\slash,ou=Dynamic,o=Intranet");
        let t = target(br"cn=a\,b\2C,ou=Dynamic,o=Intranet").unwrap();
        assert_eq!(t.written, br"cn=a\,b\2C,ou=Dynamic,o=Intranet");
        // A % of the address itself is kept; only spaces around go.
        for (dn, want) in [
            (
                &b"cn=ops%bcast@x.com,objectClass=rtPerson"[..],
                &b"ops%bcast@x.com"[..],
            ),
            (
                b"cn=a%20b@x.com %20%20,objectClass=rtPerson",
                b"a%20b@x.com",
            ),
        ] {
            assert_eq!(target(dn).unwrap().dn.rdns[0].value, want);
        }
    }

    #[test]
    fn standard_and_foreign_dns_are_left_alone() {
        let t = target(b"uid=19168,ou=dynamic,o=Intranet").unwrap();
        assert_eq!(t.written, b"uid=19168,ou=dynamic,o=Intranet");
        assert_eq!(t.class, None);
        assert_eq!(key_of(b"dc=example,dc=com"), b"dc=example,dc=com");
        assert!(target(b"cn=x,objectClass=rtNothing").is_err());
        assert!(target(b"not a dn").is_err());
    }
}
