//! NTLM accounts from a file in Samba's smbpasswd format
//! (`ntlm-accounts`), so that an administrator can export existing ones
//! with `pdbedit -e smbpasswd:FILE`, or write a line with `ilsd
//! --nt-hash NAME`. A line is `name:uid:LMHASH:NTHASH:[flags]:LCT-…:`;
//! only the name, the NT hash and the flags matter here.
//!
//! Read on the thread that starts or reloads the server; a bad line is
//! reported with its number and the others are still loaded.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;

/// NT hashes by user name (lower case).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct NtAccounts(HashMap<String, [u8; 16]>);

/// Never prints a hash: it is as good as the password for NTLM.
impl fmt::Debug for NtAccounts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NtAccounts({} accounts)", self.0.len())
    }
}

impl NtAccounts {
    /// The NT hash of a user, whatever the case of the name.
    pub fn get(&self, user: &str) -> Option<&[u8; 16]> {
        self.0.get(&user.to_lowercase())
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// What reading a file found: the accounts, and each bad line's number
/// and fault.
#[derive(Debug, Default)]
pub struct Read {
    pub accounts: NtAccounts,
    pub bad: Vec<(usize, String)>,
}

/// Reads the text of an smbpasswd file.
pub fn parse(text: &str) -> Read {
    let mut read = Read::default();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        match parse_line(line) {
            Ok(Some((name, hash))) => {
                read.accounts.0.insert(name.to_lowercase(), hash);
            }
            Ok(None) => {}
            Err(why) => read.bad.push((i + 1, why)),
        }
    }
    read
}

/// One line: `None` for a disabled account or one without a password.
fn parse_line(line: &str) -> Result<Option<(String, [u8; 16])>, String> {
    let fields: Vec<&str> = line.split(':').collect();
    if fields.len() < 5 {
        return Err("not name:uid:LMHASH:NTHASH:[flags]:...".into());
    }
    let (name, nt, flags) = (fields[0], fields[3], fields[4]);
    if name.is_empty() {
        return Err("no user name".into());
    }
    let flags = flags.trim_start_matches('[').trim_end_matches(']');
    if flags.contains('D') || nt.starts_with("NO PASSWORD") || nt.chars().all(|c| c == 'X') {
        return Ok(None);
    }
    let hash = hex16(nt).ok_or("the NT hash is not 32 hex digits")?;
    Ok(Some((name.to_string(), hash)))
}

fn hex16(text: &str) -> Option<[u8; 16]> {
    if text.len() != 32 {
        return None;
    }
    let mut out = [0u8; 16];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// Reads an smbpasswd file, warning when others may read it.
pub fn load(path: &Path) -> std::io::Result<Read> {
    use std::os::unix::fs::PermissionsExt;
    let text = std::fs::read_to_string(path)?;
    if let Ok(meta) = std::fs::metadata(path)
        && meta.permissions().mode() & 0o004 != 0
    {
        log::warn!(
            "{}: readable by every user: NT hashes log on as their users; chmod o-r it",
            path.display()
        );
    }
    Ok(parse(&text))
}

/// The smbpasswd line of an account, as `ilsd --nt-hash NAME` writes it.
pub fn line(name: &str, hash: &[u8; 16]) -> String {
    let hex: String = hash.iter().map(|b| format!("{b:02X}")).collect();
    format!(
        "{name}:0:{}:{hex}:[U          ]:LCT-00000000:",
        "X".repeat(32)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::ntlm::nt_hash;

    #[test]
    fn pdbedit_lines_read_and_bad_lines_are_numbered() {
        let text = format!(
            "# exported\n{}\nbob:1001:XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX:NOT-HEX:[U          ]:LCT-5F2A0000:\n\
             carol:1002:XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX:A4F49C406510BDCAB6824EE7C30FD852:[DU         ]:LCT-5F2A0000:\n\
             garbage\n\
             dave:1003:XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX:a4f49c406510bdcab6824ee7c30fd852:[U          ]:LCT-5F2A0000:\n",
            line("Alice", &nt_hash("secret"))
        );
        let read = parse(&text);
        assert_eq!(read.accounts.get("ALICE"), Some(&nt_hash("secret")));
        assert_eq!(read.accounts.get("dave"), Some(&nt_hash("Password")));
        assert_eq!(read.accounts.get("carol"), None, "disabled");
        assert_eq!(read.accounts.len(), 2);
        let lines: Vec<usize> = read.bad.iter().map(|(n, _)| *n).collect();
        assert_eq!(lines, [3, 5]);
        assert!(
            !format!("{:?}", read.accounts).contains("a4f4"),
            "no hash in Debug"
        );
    }
}
