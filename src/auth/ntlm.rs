//! NTLM, the one SASL mechanism of ILS ([MS-TAIL] 3.5.2.1), as the server
//! side of a logon: the CHALLENGE message, reading the AUTHENTICATE
//! message, and checking its responses against an account's NT hash
//! ([MS-NLMP] 2.2 and 3.3).
//!
//! Every response form is checked: NTLMv2 and LMv2 always; NTLMv1 and
//! NTLMv1 with extended session security only when the administrator
//! allows them (`ntlm-v1`). MD4, MD5, HMAC and DES come from RustCrypto's
//! crates, the challenge from the operating system's random source, and
//! comparisons are constant-time. This server never signs or seals the
//! LDAP stream after a logon, so it never grants SIGN, SEAL or KEY_EXCH.
//!
//! Runs on the worker threads, at a bind.

use des::Des;
use des::cipher::{BlockCipherEncrypt, KeyInit};
use hmac::{Hmac, Mac};
use md4::{Digest, Md4};
use md5::Md5;
use subtle::ConstantTimeEq;

type HmacMd5 = Hmac<Md5>;

/// NTLM negotiate flags ([MS-NLMP] 2.2.2.5).
pub mod flag {
    pub const UNICODE: u32 = 0x0000_0001;
    pub const OEM: u32 = 0x0000_0002;
    pub const REQUEST_TARGET: u32 = 0x0000_0004;
    pub const SIGN: u32 = 0x0000_0010;
    pub const SEAL: u32 = 0x0000_0020;
    pub const NTLM: u32 = 0x0000_0200;
    pub const ALWAYS_SIGN: u32 = 0x0000_8000;
    pub const TARGET_TYPE_SERVER: u32 = 0x0002_0000;
    pub const EXTENDED_SESSION_SECURITY: u32 = 0x0008_0000;
    pub const TARGET_INFO: u32 = 0x0080_0000;
    pub const VERSION: u32 = 0x0200_0000;
    pub const KEY_128: u32 = 0x2000_0000;
    pub const KEY_EXCHANGE: u32 = 0x4000_0000;
    pub const KEY_56: u32 = 0x8000_0000;
}

/// The names this server gives itself in a CHALLENGE.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Names {
    /// NetBIOS domain name (AV id 2), upper case.
    pub domain: String,
    /// NetBIOS computer name (AV id 1), upper case.
    pub computer: String,
    /// DNS domain name (AV id 4).
    pub dns_domain: String,
    /// DNS computer name (AV id 3).
    pub dns_computer: String,
}

impl Names {
    /// The names from the configured domain and host names, each
    /// defaulting to the host's: `ntlm-domain` is the NetBIOS domain, or a
    /// DNS domain whose first label is it.
    pub fn new(domain: Option<&str>, hostname: Option<&str>) -> Names {
        let host = hostname
            .map(str::to_string)
            .or_else(|| nix::unistd::gethostname().ok()?.into_string().ok())
            .unwrap_or_else(|| "ilsd".into());
        let (short_host, host_domain) = match host.split_once('.') {
            Some((h, d)) => (h.to_string(), Some(d.to_string())),
            None => (host.clone(), None),
        };
        let dns_domain = domain
            .filter(|d| d.contains('.'))
            .map(str::to_string)
            .or(host_domain)
            .unwrap_or_else(|| "localdomain".into());
        let netbios = domain
            .map(|d| d.split('.').next().unwrap_or(d).to_string())
            .unwrap_or_else(|| {
                dns_domain
                    .split('.')
                    .next()
                    .unwrap_or("WORKGROUP")
                    .to_string()
            });
        Names {
            domain: netbios.to_uppercase(),
            computer: short_host.to_uppercase(),
            dns_computer: match host.contains('.') {
                true => host.clone(),
                false => format!("{host}.{dns_domain}"),
            },
            dns_domain,
        }
    }
}

/// What a CHALLENGE promised: the AUTHENTICATE that answers it is checked
/// against this, once.
#[derive(Clone, Debug)]
pub struct Challenge {
    pub server_challenge: [u8; 8],
    pub flags: u32,
}

/// The message type of an NTLM message: 1 NEGOTIATE, 2 CHALLENGE,
/// 3 AUTHENTICATE.
pub fn message_type(message: &[u8]) -> Option<u32> {
    let rest = message.strip_prefix(b"NTLMSSP\0")?;
    Some(u32::from_le_bytes(rest.get(..4)?.try_into().ok()?))
}

fn utf16(s: &str) -> Vec<u8> {
    s.encode_utf16().flat_map(u16::to_le_bytes).collect()
}

/// Builds the CHALLENGE answering a NEGOTIATE ([MS-NLMP] 2.2.1.2): a fresh
/// challenge from the operating system, the client's flags that this
/// server honours, its names in TargetInfo, and the Version field.
pub fn challenge(negotiate: &[u8], names: &Names) -> std::io::Result<(Vec<u8>, Challenge)> {
    let asked = match negotiate.get(12..16) {
        Some(f) if message_type(negotiate) == Some(1) => u32::from_le_bytes(f.try_into().unwrap()),
        _ => flag::UNICODE,
    };
    // Never SIGN, SEAL or KEY_EXCH: the stream is not signed or sealed
    // after the logon, and a client told otherwise would expect it.
    let echoed = flag::ALWAYS_SIGN | flag::EXTENDED_SESSION_SECURITY | flag::KEY_128 | flag::KEY_56;
    let unicode = asked & flag::UNICODE != 0 || asked & flag::OEM == 0;
    let flags = (asked & echoed)
        | if unicode { flag::UNICODE } else { flag::OEM }
        | flag::REQUEST_TARGET
        | flag::NTLM
        | flag::TARGET_TYPE_SERVER
        | flag::TARGET_INFO
        | flag::VERSION;
    let mut server_challenge = [0u8; 8];
    getrandom::fill(&mut server_challenge).map_err(std::io::Error::other)?;
    let target = match unicode {
        true => utf16(&names.computer),
        false => names.computer.as_bytes().to_vec(),
    };
    // AV pairs ([MS-NLMP] 2.2.2.1), then MsvAvEOL. No timestamp: with one,
    // clients add a MIC that this server would have to check.
    let mut info = Vec::new();
    for (id, value) in [
        (2u16, &names.domain),
        (1, &names.computer),
        (4, &names.dns_domain),
        (3, &names.dns_computer),
    ] {
        let value = utf16(value);
        info.extend(id.to_le_bytes());
        info.extend((value.len() as u16).to_le_bytes());
        info.extend(value);
    }
    info.extend([0, 0, 0, 0]);
    const HEADER: usize = 56;
    let field = |len: usize, at: usize| -> [u8; 8] {
        let mut f = [0u8; 8];
        f[..2].copy_from_slice(&(len as u16).to_le_bytes());
        f[2..4].copy_from_slice(&(len as u16).to_le_bytes());
        f[4..].copy_from_slice(&(at as u32).to_le_bytes());
        f
    };
    let mut m = Vec::with_capacity(HEADER + target.len() + info.len());
    m.extend(b"NTLMSSP\0");
    m.extend(2u32.to_le_bytes());
    m.extend(field(target.len(), HEADER));
    m.extend(flags.to_le_bytes());
    m.extend(server_challenge);
    m.extend([0u8; 8]);
    m.extend(field(info.len(), HEADER + target.len()));
    // Version: 6.1 build 7601, NTLM revision 15, as Windows writes it.
    m.extend([6, 1, 0xb1, 0x1d, 0, 0, 0, 15]);
    m.extend(&target);
    m.extend(&info);
    let pending = Challenge {
        server_challenge,
        flags,
    };
    Ok((m, pending))
}

/// An AUTHENTICATE message, read ([MS-NLMP] 2.2.1.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authenticate {
    pub lm_response: Vec<u8>,
    pub nt_response: Vec<u8>,
    pub domain: String,
    pub user: String,
    pub flags: u32,
}

impl Authenticate {
    pub fn parse(m: &[u8]) -> Option<Authenticate> {
        if message_type(m) != Some(3) {
            return None;
        }
        let field = |at: usize| -> Option<&[u8]> {
            let f = m.get(at..at + 8)?;
            let len = u16::from_le_bytes([f[0], f[1]]) as usize;
            let offset = u32::from_le_bytes([f[4], f[5], f[6], f[7]]) as usize;
            m.get(offset..offset.checked_add(len)?)
        };
        let flags = u32::from_le_bytes(m.get(60..64)?.try_into().ok()?);
        let text = |bytes: &[u8]| -> Option<String> {
            match flags & flag::UNICODE != 0 {
                true if bytes.len().is_multiple_of(2) => String::from_utf16(
                    &bytes
                        .chunks_exact(2)
                        .map(|c| u16::from_le_bytes([c[0], c[1]]))
                        .collect::<Vec<_>>(),
                )
                .ok(),
                true => None,
                false => Some(bytes.iter().map(|&b| b as char).collect()),
            }
        };
        Some(Authenticate {
            lm_response: field(12)?.to_vec(),
            nt_response: field(20)?.to_vec(),
            domain: text(field(28)?)?,
            user: text(field(36)?)?,
            flags,
        })
    }
}

/// The NT hash of a password: MD4 of its UTF-16LE form.
pub fn nt_hash(password: &str) -> [u8; 16] {
    Md4::digest(utf16(password)).into()
}

fn hmac_md5(key: &[u8], parts: &[&[u8]]) -> [u8; 16] {
    let mut mac = <HmacMd5 as hmac::KeyInit>::new_from_slice(key).expect("HMAC takes any key");
    for p in parts {
        mac.update(p);
    }
    mac.finalize().into_bytes().into()
}

/// The NTLMv2 key of a user: HMAC-MD5 of the NT hash over the upper-case
/// user name and the domain, in UTF-16LE.
fn v2_key(hash: &[u8; 16], user: &str, domain: &str) -> [u8; 16] {
    hmac_md5(hash, &[&utf16(&format!("{}{domain}", user.to_uppercase()))])
}

/// DESL ([MS-NLMP] 6): the 16-byte key and five zero bytes as three DES
/// keys, each encrypting `data`.
fn desl(key: &[u8; 16], data: &[u8; 8]) -> [u8; 24] {
    let mut k = [0u8; 21];
    k[..16].copy_from_slice(key);
    let mut out = [0u8; 24];
    for i in 0..3 {
        let cipher = Des::new(&des_key(&k[i * 7..i * 7 + 7]).into());
        let mut block = (*data).into();
        cipher.encrypt_block(&mut block);
        out[i * 8..i * 8 + 8].copy_from_slice(&block);
    }
    out
}

/// Spreads 56 key bits over eight bytes, the low bit of each left for
/// parity (which DES ignores).
fn des_key(seven: &[u8]) -> [u8; 8] {
    let bits = seven.iter().fold(0u64, |acc, &b| (acc << 8) | b as u64);
    let mut key = [0u8; 8];
    for (i, k) in key.iter_mut().enumerate() {
        *k = (((bits >> (49 - 7 * i)) & 0x7f) as u8) << 1;
    }
    key
}

/// Which response form a logon used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    NtlmV2,
    LmV2,
    NtlmV1,
    NtlmV1Ess,
}

/// Checks the responses of an AUTHENTICATE against an account's NT hash
/// and the challenge it answers. Returns the form that matched.
/// The domain is tried as the client sent it, then empty, as Samba does.
pub fn verify(
    auth: &Authenticate,
    challenge: &Challenge,
    hash: &[u8; 16],
    allow_v1: bool,
) -> Option<Form> {
    let sc = &challenge.server_challenge;
    let nt = &auth.nt_response;
    if nt.len() > 24 {
        for domain in [auth.domain.as_str(), ""] {
            let key = v2_key(hash, &auth.user, domain);
            let proof = hmac_md5(&key, &[sc, &nt[16..]]);
            if bool::from(proof.ct_eq(&nt[..16])) {
                return Some(Form::NtlmV2);
            }
        }
    }
    let lm = &auth.lm_response;
    if lm.len() == 24 && lm.iter().any(|&b| b != 0) {
        for domain in [auth.domain.as_str(), ""] {
            let key = v2_key(hash, &auth.user, domain);
            let proof = hmac_md5(&key, &[sc, &lm[16..24]]);
            if bool::from(proof.ct_eq(&lm[..16])) {
                return Some(Form::LmV2);
            }
        }
    }
    if !allow_v1 || nt.len() != 24 {
        return None;
    }
    let ess = auth.flags & flag::EXTENDED_SESSION_SECURITY != 0 && lm.len() >= 8;
    if ess {
        let digest = Md5::digest([&sc[..], &lm[..8]].concat());
        let data: [u8; 8] = digest[..8].try_into().unwrap();
        if bool::from(desl(hash, &data).ct_eq(nt)) {
            return Some(Form::NtlmV1Ess);
        }
    }
    bool::from(desl(hash, sc).ct_eq(nt)).then_some(Form::NtlmV1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// [MS-NLMP] 4.2: user "User", domain "Domain", password "Password",
    /// server challenge 01 23 45 67 89 ab cd ef.
    fn vector(lm: &str, nt: &str, flags: u32) -> (Authenticate, Challenge) {
        let auth = Authenticate {
            lm_response: hex(lm),
            nt_response: hex(nt),
            domain: "Domain".into(),
            user: "User".into(),
            flags,
        };
        let challenge = Challenge {
            server_challenge: hex("0123456789abcdef").try_into().unwrap(),
            flags,
        };
        (auth, challenge)
    }

    #[test]
    fn the_nt_hash_of_the_test_vectors() {
        assert_eq!(
            nt_hash("Password").to_vec(),
            hex("a4f49c406510bdcab6824ee7c30fd852")
        );
    }

    #[test]
    fn ntlm_v1_vector_4_2_2() {
        let (auth, challenge) = vector(
            "98def7b87f88aa5dafe2df779688a172def11c7d5ccdef13",
            "67c43011f30298a2ad35ece64f16331c44bdbed927841f94",
            flag::UNICODE | flag::NTLM,
        );
        let hash = nt_hash("Password");
        assert_eq!(verify(&auth, &challenge, &hash, true), Some(Form::NtlmV1));
        assert_eq!(
            verify(&auth, &challenge, &hash, false),
            None,
            "v1 only when allowed"
        );
        assert_eq!(verify(&auth, &challenge, &nt_hash("password"), true), None);
    }

    #[test]
    fn ntlm_v1_with_extended_session_security_vector_4_2_3() {
        let (auth, challenge) = vector(
            "aaaaaaaaaaaaaaaa00000000000000000000000000000000",
            "7537f803ae367128ca458204bde7caf81e97ed2683267232",
            flag::UNICODE | flag::NTLM | flag::EXTENDED_SESSION_SECURITY,
        );
        let hash = nt_hash("Password");
        assert_eq!(
            verify(&auth, &challenge, &hash, true),
            Some(Form::NtlmV1Ess)
        );
        assert_eq!(verify(&auth, &challenge, &hash, false), None);
    }

    #[test]
    fn ntlm_v2_and_lm_v2_vector_4_2_4() {
        // The blob: version, reserved, time 0, client challenge aa..., then
        // the AV pairs of the vector (domain "Domain", server "Server").
        let blob = [
            "0101000000000000",                 // RespType, HiRespType, reserved
            "0000000000000000",                 // time
            "aaaaaaaaaaaaaaaa",                 // client challenge
            "00000000",                         // reserved
            "02000c0044006f006d00610069006e00", // MsvAvNbDomainName "Domain"
            "01000c00530065007200760065007200", // MsvAvNbComputerName "Server"
            "00000000",                         // MsvAvEOL
            "00000000",                         // reserved
        ]
        .concat();
        let nt = format!("68cd0ab851e51c96aabc927bebef6a1c{blob}");
        let lm = "86c35097ac9cec102554764a57cccc19aaaaaaaaaaaaaaaa";
        let (auth, challenge) = vector(lm, &nt, flag::UNICODE | flag::NTLM);
        let hash = nt_hash("Password");
        assert_eq!(verify(&auth, &challenge, &hash, false), Some(Form::NtlmV2));
        let mut lm_only = auth.clone();
        lm_only.nt_response[0] ^= 1;
        assert_eq!(verify(&lm_only, &challenge, &hash, false), Some(Form::LmV2));
        let mut neither = lm_only.clone();
        neither.lm_response[0] ^= 1;
        assert_eq!(verify(&neither, &challenge, &hash, true), None);
        let mut other_challenge = challenge.clone();
        other_challenge.server_challenge[0] ^= 1;
        assert_eq!(
            verify(&auth, &other_challenge, &hash, true),
            None,
            "a replay to another challenge"
        );
    }

    #[test]
    fn the_challenge_carries_fresh_bytes_four_names_and_no_signing() {
        let names = Names::new(Some("EXAMPLE"), Some("ils.example.org"));
        let mut negotiate = b"NTLMSSP\0\x01\0\0\0".to_vec();
        let asked = flag::UNICODE
            | flag::NTLM
            | flag::SIGN
            | flag::SEAL
            | flag::KEY_EXCHANGE
            | flag::KEY_128;
        negotiate.extend(asked.to_le_bytes());
        let (a, pa) = challenge(&negotiate, &names).unwrap();
        let (b, pb) = challenge(&negotiate, &names).unwrap();
        assert_ne!(pa.server_challenge, pb.server_challenge, "fresh every time");
        assert_eq!(&a[24..32], &pa.server_challenge);
        assert_ne!(a, b);
        let flags = u32::from_le_bytes(a[20..24].try_into().unwrap());
        assert_eq!(flags & (flag::SIGN | flag::SEAL | flag::KEY_EXCHANGE), 0);
        assert_ne!(flags & flag::KEY_128, 0);
        assert_ne!(flags & flag::VERSION, 0);
        let info_len = u16::from_le_bytes([a[40], a[41]]) as usize;
        let info_at = u32::from_le_bytes(a[44..48].try_into().unwrap()) as usize;
        let info = &a[info_at..info_at + info_len];
        let mut ids = Vec::new();
        let mut at = 0;
        loop {
            let id = u16::from_le_bytes([info[at], info[at + 1]]);
            let len = u16::from_le_bytes([info[at + 2], info[at + 3]]) as usize;
            if id == 0 {
                break;
            }
            let value: Vec<u16> = info[at + 4..at + 4 + len]
                .chunks(2)
                .map(|c| u16::from_le_bytes([c[0], c[1]]))
                .collect();
            ids.push((id, String::from_utf16(&value).unwrap()));
            at += 4 + len;
        }
        assert_eq!(
            ids,
            [
                (2, "EXAMPLE".to_string()),
                (1, "ILS".to_string()),
                (4, "example.org".to_string()),
                (3, "ils.example.org".to_string()),
            ]
        );
    }
}
