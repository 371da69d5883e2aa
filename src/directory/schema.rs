//! The ILS schema: attribute types with their aliases, object classes with
//! their required attributes, and the entries that publish them under
//! `cn=Schema,ou=Admin,o=Intranet` ([MS-TAIL] 2.2 and 2.3).
//!
//! Pure data, read by every thread; nothing here changes at run time.

/// One attribute type of the directory.
pub struct AttrType {
    /// The name the directory returns when the client did not name it.
    pub name: &'static str,
    /// Every other name that resolves to this attribute, lowercase: the
    /// [MS-TAIL] 2.2.5 wire names, common LDAP aliases, and the OID of
    /// the standard types (RFC 4512 section 2.5: an OID names a type as
    /// well as a name does).
    pub aliases: &'static [&'static str],
}

macro_rules! attributes {
    ($($id:ident = $name:literal $(| $alias:literal)*;)*) => {
        /// Every attribute type the schema knows, indexed by [`Attr`] code.
        pub static ATTRIBUTES: &[AttrType] = &[
            $(AttrType { name: $name, aliases: &[$($alias),*] },)*
        ];
        #[allow(non_camel_case_types, clippy::upper_case_acronyms)]
        #[repr(u8)]
        enum Code { $($id,)* }
        /// Codes of the attributes the server itself looks at.
        pub mod attr {
            use super::{Attr, Code};
            $(pub const $id: Attr = Attr::Known(Code::$id as u8);)*
        }
    };
}

attributes! {
    OBJECT_CLASS = "objectClass" | "2.5.4.0";
    CN = "cn" | "commonname" | "2.5.4.3";
    SURNAME = "surName" | "sn" | "2.5.4.4";
    GIVEN_NAME = "givenName" | "gn" | "2.5.4.42";
    MAIL = "rfc822Mailbox" | "mail" | "email" | "0.9.2342.19200300.100.1.3";
    LOCATION = "location";
    COMMENT = "comment";
    C = "c" | "countryname" | "2.5.4.6";
    O = "o" | "organizationname" | "2.5.4.10";
    OU = "ou" | "organizationalunitname" | "2.5.4.11";
    IP_ADDRESS = "ipAddress" | "sipaddress";
    SFLAGS = "sFlags";
    SECURITY_TOKEN = "securityToken" | "ssecurity";
    ILSA26214430 = "ILSA26214430";
    ILSA26279966 = "ILSA26279966";
    ILSA32833566 = "ILSA32833566";
    ILSA32964638 = "ILSA32964638";
    ILSA39321630 = "ILSA39321630";
    GUID = "guid" | "sappguid";
    APPLICATION_ID = "applicationID" | "sappid";
    APP_NAME = "appName" | "sappname";
    MIME_TYPE = "mimeType" | "smimetype";
    PORT = "port" | "sport";
    PROTOCOL_GUID = "protocolGUID" | "sprotguid";
    PROTOCOL_ID = "protocolID" | "sprotid";
    PROTOCOL_MIME_TYPE = "protocolMimeType" | "sprotmimetype";
    USER_OBJECT = "userObject";
    GROUP_OBJECT = "groupObject";
    DW_FLAGS = "dwFlags";
    FRIENDLY_NAME = "friendlyName";
    UID = "uid" | "userid" | "0.9.2342.19200300.100.1.1";
    CONFERENCE_BLOB = "conferenceBlob";
    NT_SECURITY_DESCRIPTOR = "ntSecurityDescriptor";
    ADVERTISING_SCOPE = "advertisingScope";
    ANNOUNCEMENT_SCOPE = "announcementScope";
    ATTENDEES = "attendees";
    ATTENDEES_COUNT = "attendeesCount";
    CONF_ADDR = "confAddr";
    CONTACT_INFORMATION = "contactInformation";
    GENERAL_DESCRIPTION = "generalDescription";
    IS_ENCRYPTED = "isEncrypted";
    MAX_ATTENDEES_COUNT = "maxAttendeesCount";
    ORIGINATOR = "originator";
    RATING = "rating";
    START_TIME = "startTime";
    STOP_TIME = "stopTime";
    SUB_TYPE = "subType";
    URL = "url";
    DESCRIPTION = "description" | "2.5.4.13";
    DISPLAY_NAME = "displayName" | "2.16.840.1.113730.3.1.241";
    SCHEMA_ID_GUID = "schemaIDGUID";
    U2_ATTRIBUTE_ID = "u2AttributeID";
    ATTRIBUTE_SYNTAX = "attributeSyntax";
    IS_SINGLE_VALUED = "isSingleValued";
    IS_SEARCHABLE = "isSearchable";
    GOVERNS_ID = "governsID";
    MUST_CONTAIN = "mustContain";
    MAY_CONTAIN = "mayContain";
    SUB_CLASS_OF = "subClassOf";
    ENTRY_TTL = "entryTTL" | "1.3.6.1.4.1.1466.101.119.3";
    ILS_OWNER = "ilsOwner";
}

/// An attribute type: one the schema knows, or any other name a client
/// used (kept lowercase, so that letter case never makes two attributes).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Attr {
    Known(u8),
    Other(Box<[u8]>),
}

impl Attr {
    /// Resolves a name as it came from the wire (any case, any alias).
    /// `sttl` is not resolved here: it is a command of the ILS dialect.
    pub fn from_name(name: &[u8]) -> Attr {
        let name = strip_options(name);
        for (code, t) in ATTRIBUTES.iter().enumerate() {
            if t.name.as_bytes().eq_ignore_ascii_case(name)
                || t.aliases
                    .iter()
                    .any(|a| a.as_bytes().eq_ignore_ascii_case(name))
            {
                return Attr::Known(code as u8);
            }
        }
        Attr::Other(name.to_ascii_lowercase().into_boxed_slice())
    }

    /// The name an entry shows this attribute under when the client asked
    /// for all attributes rather than by name: the "LDAP message name" of
    /// [MS-TAIL] 2.2.5 where there is one (`sIPAddress` for ipAddress),
    /// which is what ILS clients look values up by.
    pub fn message_name(&self) -> &[u8] {
        let mapped: &str = match *self {
            attr::GUID => "sAppGUID",
            attr::APPLICATION_ID => "sAppID",
            attr::APP_NAME => "sAppName",
            attr::IP_ADDRESS => "sIPAddress",
            attr::MIME_TYPE => "sMimeType",
            attr::PORT => "sPort",
            attr::PROTOCOL_GUID => "sProtGuid",
            attr::PROTOCOL_ID => "sProtId",
            attr::PROTOCOL_MIME_TYPE => "sProtMimeType",
            attr::SECURITY_TOKEN => "sSecurity",
            _ => return self.name(),
        };
        mapped.as_bytes()
    }

    /// The name the directory gives this attribute.
    pub fn name(&self) -> &[u8] {
        match self {
            Attr::Known(code) => ATTRIBUTES[*code as usize].name.as_bytes(),
            Attr::Other(name) => name,
        }
    }

    /// Operational attributes are computed, never stored, and returned only
    /// when asked for by name or by `+`.
    pub fn is_operational(&self) -> bool {
        *self == attr::ENTRY_TTL || *self == attr::ILS_OWNER
    }

    /// Values compared byte for byte rather than as case-insensitive strings.
    pub fn is_binary(&self) -> bool {
        *self == attr::NT_SECURITY_DESCRIPTOR
    }
}

/// Strips attribute options (`cn;lang-en`) and the `mailto:` prefix that
/// [MS-TAIL] 3.5.11 and 4.1.3 show in front of `cn`.
fn strip_options(name: &[u8]) -> &[u8] {
    let name = match name.iter().position(|&b| b == b';') {
        Some(i) => &name[..i],
        None => name,
    };
    let prefix = b"mailto:";
    if name.len() > prefix.len() && name[..prefix.len()].eq_ignore_ascii_case(prefix) {
        &name[prefix.len()..]
    } else {
        name
    }
}

/// One object class of the schema.
pub struct ObjectClass {
    pub name: &'static str,
    pub oid: &'static str,
    pub must: &'static [Attr],
    pub may: &'static [&'static str],
}

pub const RT_PERSON: &str = "rtPerson";
pub const RT_APPLICATION_USER: &str = "rtApplicationUser";
pub const RT_CONFERENCE: &str = "rtConference";
pub const DYNAMIC_OBJECT: &str = "dynamicObject";

/// The classes an entry may have. rtConference requires only `uid`: the
/// schema of [MS-TAIL] 2.3.3 also lists `cn`, but the Dialer creates
/// conferences without one (4.7.2, 4.7.3), and Windows' ILS accepts them.
pub static OBJECT_CLASSES: &[ObjectClass] = &[
    ObjectClass {
        name: "top",
        oid: "2.5.6.0",
        must: &[attr::OBJECT_CLASS],
        may: &[],
    },
    ObjectClass {
        name: RT_PERSON,
        oid: "1.2.840.113556.1.4.611.1103010708051504150108150101130009121504000012000415120210000708",
        must: &[attr::CN, attr::OBJECT_CLASS],
        may: &[
            "appName",
            "c",
            "comment",
            "dwFlags",
            "friendlyName",
            "givenName",
            "guid",
            "ILSA26214430",
            "ILSA26279966",
            "ILSA32833566",
            "ILSA32964638",
            "ILSA39321630",
            "ipAddress",
            "location",
            "mimeType",
            "o",
            "port",
            "protocolMimeType",
            "rfc822Mailbox",
            "sFlags",
            "securityToken",
            "smodop",
            "surName",
        ],
    },
    ObjectClass {
        name: RT_APPLICATION_USER,
        oid: "1.2.840.113556.1.4.611.1103010708051503150108150101130009121504000012000415120210000708",
        must: &[attr::CN, attr::OBJECT_CLASS],
        may: &[
            "appName",
            "applicationID",
            "groupObject",
            "guid",
            "ILSA26214430",
            "ILSA26279966",
            "ILSA32833566",
            "ILSA32964638",
            "ILSA39321630",
            "mimeType",
            "port",
            "protocolGUID",
            "protocolID",
            "protocolMimeType",
            "sFlags",
            "userObject",
        ],
    },
    ObjectClass {
        name: RT_CONFERENCE,
        oid: "1.2.840.113556.1.4.611.1103010708051501150108150101130009121504000012000415120210000708",
        must: &[attr::OBJECT_CLASS, attr::UID],
        may: &[
            "cn",
            "advertisingScope",
            "announcementScope",
            "applicationID",
            "attendees",
            "attendeesCount",
            "confAddr",
            "conferenceBlob",
            "contactInformation",
            "generalDescription",
            "isEncrypted",
            "maxAttendeesCount",
            "originator",
            "protocolID",
            "rating",
            "startTime",
            "stopTime",
            "subType",
            "url",
        ],
    },
    ObjectClass {
        name: DYNAMIC_OBJECT,
        oid: "1.3.6.1.4.1.1466.101.119.2",
        must: &[],
        may: &["entryTTL"],
    },
    ObjectClass {
        name: "organization",
        oid: "2.5.6.4",
        must: &[attr::O],
        may: &["description"],
    },
    ObjectClass {
        name: "organizationalUnit",
        oid: "2.5.6.5",
        must: &[attr::OU],
        may: &["description"],
    },
    ObjectClass {
        name: "attributeSchema",
        oid: "1.2.840.113556.1.3.14",
        must: &[attr::CN],
        may: &[
            "displayName",
            "u2AttributeID",
            "description",
            "schemaIDGUID",
            "attributeSyntax",
            "isSingleValued",
            "isSearchable",
        ],
    },
    ObjectClass {
        name: "classSchema",
        oid: "1.2.840.113556.1.3.13",
        must: &[attr::CN],
        may: &["governsID", "mustContain", "mayContain", "subClassOf"],
    },
];

/// Looks a class up by name, in any letter case.
pub fn object_class(name: &[u8]) -> Option<&'static ObjectClass> {
    OBJECT_CLASSES
        .iter()
        .find(|c| c.name.as_bytes().eq_ignore_ascii_case(name))
}

/// The structural ILS classes a client registers.
pub fn is_ils_class(name: &[u8]) -> bool {
    [RT_PERSON, RT_APPLICATION_USER, RT_CONFERENCE]
        .iter()
        .any(|c| c.as_bytes().eq_ignore_ascii_case(name))
}

/// An entry of the published schema: its RDN value and attributes.
pub type SchemaEntry = (String, Vec<(Attr, Vec<Vec<u8>>)>);

/// The entries published under `cn=Schema,ou=Admin,o=Intranet`: one
/// classSchema entry per ILS class and the two attributeSchema entries of
/// [MS-TAIL] 2.3.4 and 2.3.5.
pub fn schema_entries() -> Vec<SchemaEntry> {
    let text = |s: &str| s.as_bytes().to_vec();
    let mut out = Vec::new();
    for class in OBJECT_CLASSES.iter().filter(|c| c.name != "top") {
        let must: Vec<Vec<u8>> = class.must.iter().map(|a| a.name().to_vec()).collect();
        let may: Vec<Vec<u8>> = class.may.iter().map(|a| text(a)).collect();
        let mut attrs = vec![
            (attr::OBJECT_CLASS, vec![text("top"), text("classSchema")]),
            (attr::CN, vec![text(class.name)]),
            (attr::GOVERNS_ID, vec![text(class.oid)]),
            (attr::SUB_CLASS_OF, vec![text("top")]),
        ];
        if !must.is_empty() {
            attrs.push((attr::MUST_CONTAIN, must));
        }
        if !may.is_empty() {
            attrs.push((attr::MAY_CONTAIN, may));
        }
        out.push((class.name.to_string(), attrs));
    }
    let attribute = |cn: &str, display: &str, id: &str, desc: &str, guid: &str, syntax: &str| {
        (
            cn.to_string(),
            vec![
                (
                    attr::OBJECT_CLASS,
                    vec![text("top"), text("attributeSchema")],
                ),
                (attr::CN, vec![text(cn)]),
                (attr::DISPLAY_NAME, vec![text(display)]),
                (attr::U2_ATTRIBUTE_ID, vec![text(id)]),
                (attr::DESCRIPTION, vec![text(desc)]),
                (attr::SCHEMA_ID_GUID, vec![text(guid)]),
                (attr::ATTRIBUTE_SYNTAX, vec![text(syntax)]),
                (attr::IS_SINGLE_VALUED, vec![text("1")]),
                (attr::IS_SEARCHABLE, vec![text("0")]),
            ],
        )
    };
    out.push(attribute(
        "ntSecurityDescriptor",
        "security-descriptor",
        "1.2.840.113556.1.5.108.1103010708070215150108150101130009121504000012000415120210000708",
        "The security descriptor for the object",
        "6D12FC99-B836-11D0-9601-00C04FC30E1A3",
        "Binary",
    ));
    out.push(attribute(
        "schemaIDGUID",
        "schema-id-guid",
        "1.2.840.113556.1.4.148",
        "GUID of a class or attribute definition",
        "ed1af3b3-bcfa-11d0-853a-00a0c90c93e1",
        "Octet String",
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_names_and_aliases_resolve_to_one_attribute() {
        assert_eq!(Attr::from_name(b"sappid"), attr::APPLICATION_ID);
        assert_eq!(Attr::from_name(b"ApplicationId"), attr::APPLICATION_ID);
        assert_eq!(Attr::from_name(b"sIPAddress"), attr::IP_ADDRESS);
        assert_eq!(Attr::from_name(b"sn"), attr::SURNAME);
        assert_eq!(Attr::from_name(b"surname"), attr::SURNAME);
        assert_eq!(Attr::from_name(b"mail"), attr::MAIL);
        assert_eq!(Attr::from_name(b"2.5.4.3"), attr::CN);
        assert_eq!(Attr::from_name(b"0.9.2342.19200300.100.1.1"), attr::UID);
        assert_eq!(
            Attr::from_name(b"1.3.6.1.4.1.1466.101.119.3"),
            attr::ENTRY_TTL
        );
        assert_eq!(Attr::from_name(b"mailto:cn"), attr::CN);
        assert_eq!(Attr::from_name(b"cn;lang-en"), attr::CN);
        assert_eq!(
            Attr::from_name(b"TimeStamp"),
            Attr::Other(b"timestamp".to_vec().into())
        );
        assert_eq!(attr::IP_ADDRESS.name(), b"ipAddress");
    }

    #[test]
    fn conference_needs_uid_but_not_cn() {
        let conf = object_class(b"RTConference").expect("rtConference is in the schema");
        assert!(conf.must.contains(&attr::UID));
        assert!(!conf.must.contains(&attr::CN));
    }

    #[test]
    fn schema_publishes_every_ils_class_and_the_two_attributes() {
        let names: Vec<String> = schema_entries().into_iter().map(|(cn, _)| cn).collect();
        for want in [
            RT_PERSON,
            RT_APPLICATION_USER,
            RT_CONFERENCE,
            DYNAMIC_OBJECT,
        ] {
            assert!(names.iter().any(|n| n == want), "{want}");
        }
        assert!(names.iter().any(|n| n == "ntSecurityDescriptor"));
        assert!(names.iter().any(|n| n == "schemaIDGUID"));
    }
}
