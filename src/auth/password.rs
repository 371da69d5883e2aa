//! Account passwords as the configuration gives them: hashed the way
//! slappasswd writes them (`{SSHA}`, `{SSHA256}`, `{SSHA512}`, and
//! `{ARGON2}` from its argon2 module), or plain. The hashes are checked
//! with RustCrypto's crates, compared in constant time; nothing here is
//! hand-written cryptography. Runs on the worker threads at a bind.

use std::fmt;

use argon2::{Argon2, PasswordHash, PasswordVerifier};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use sha2::Digest;
use subtle::ConstantTimeEq;

/// A stored password.
#[derive(Clone, PartialEq, Eq)]
pub enum Password {
    /// The password itself: works, and is warned about at start.
    Plain(Vec<u8>),
    /// `{SSHA}`: SHA-1 of the password and a salt, then the salt.
    Ssha(Vec<u8>),
    /// `{SSHA256}`: the same with SHA-256.
    Ssha256(Vec<u8>),
    /// `{SSHA512}`: the same with SHA-512.
    Ssha512(Vec<u8>),
    /// `{ARGON2}`: a PHC string (`$argon2id$v=19$m=...`).
    Argon2(String),
}

/// Never prints a password or its hash: configurations get logged.
impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Password::Plain(_) => "Password::Plain(..)",
            Password::Ssha(_) => "Password::Ssha(..)",
            Password::Ssha256(_) => "Password::Ssha256(..)",
            Password::Ssha512(_) => "Password::Ssha512(..)",
            Password::Argon2(_) => "Password::Argon2(..)",
        })
    }
}

impl Password {
    /// Reads a password as the configuration gives it. A `{SCHEME}` this
    /// server does not know, or a hash that does not decode, is an error
    /// rather than a plain password that could never match.
    pub fn parse(text: &str) -> Result<Password, String> {
        let Some(rest) = text.strip_prefix('{') else {
            return Ok(Password::Plain(text.as_bytes().to_vec()));
        };
        let Some((scheme, value)) = rest.split_once('}') else {
            return Ok(Password::Plain(text.as_bytes().to_vec()));
        };
        let decoded = |min: usize| match STANDARD.decode(value.trim()) {
            Ok(bytes) if bytes.len() > min => Ok(bytes),
            _ => Err(format!("the {{{scheme}}} hash does not decode")),
        };
        match scheme.to_ascii_uppercase().as_str() {
            "SSHA" => Ok(Password::Ssha(decoded(20)?)),
            "SSHA256" => Ok(Password::Ssha256(decoded(32)?)),
            "SSHA512" => Ok(Password::Ssha512(decoded(64)?)),
            "ARGON2" => {
                PasswordHash::new(value.trim())
                    .map_err(|e| format!("the {{ARGON2}} hash does not parse: {e}"))?;
                Ok(Password::Argon2(value.trim().to_string()))
            }
            "CLEARTEXT" => Ok(Password::Plain(value.as_bytes().to_vec())),
            other => Err(format!(
                "password scheme {{{other}}} is not supported (SSHA, SSHA256, SSHA512, ARGON2)"
            )),
        }
    }

    /// Whether it is stored as the password itself.
    pub fn is_plain(&self) -> bool {
        matches!(self, Password::Plain(_))
    }

    /// Whether `given` is this password.
    pub fn verify(&self, given: &[u8]) -> bool {
        match self {
            Password::Plain(p) => p.ct_eq(given).into(),
            Password::Ssha(h) => salted::<sha1::Sha1>(h, given),
            Password::Ssha256(h) => salted::<sha2::Sha256>(h, given),
            Password::Ssha512(h) => salted::<sha2::Sha512>(h, given),
            Password::Argon2(phc) => PasswordHash::new(phc)
                .is_ok_and(|hash| Argon2::default().verify_password(given, &hash).is_ok()),
        }
    }
}

/// Checks a salted hash: the digest of the password and the salt,
/// followed by the salt.
fn salted<D: Digest>(stored: &[u8], given: &[u8]) -> bool {
    let size = <D as Digest>::output_size();
    let Some((digest, salt)) = stored.split_at_checked(size) else {
        return false;
    };
    let mut hasher = D::new();
    hasher.update(given);
    hasher.update(salt);
    hasher.finalize().as_slice().ct_eq(digest).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slappasswd_hashes_verify() {
        // Written by slappasswd -s secret: -h {SSHA}; with -o
        // module-load=pw-sha2, -h {SSHA256} and {SSHA512}; with -o
        // module-load=argon2, -h {ARGON2}.
        let hashed = [
            "{SSHA}m1/rLC3x0dABW95YeD1Q2trrl4bSufqi",
            "{SSHA256}Fc3vBY2Deeg1FrJn2J7Mb6uHTln3pZkhSk4bT5nZ1jpGPyU1oQLYtw==",
            "{SSHA512}TCjsrU2AtQ/TuODDS5ckJbH9W4VCh3JysNp3OPD0ze5kC4P/gt9410zF6K4yYttsT+VsQ+PhS97/w0KUfrkJBVBLjch9Bkxm",
            "{ARGON2}$argon2i$v=19$m=4096,t=3,p=1$1iXUPFUJFstnoUG5OLqdfg$gG+Gwi+a6tKoIiS3vC7gUm3sCpLlYMk125ilRjoEkcs",
        ];
        for text in hashed {
            let p = Password::parse(text).unwrap();
            assert!(!p.is_plain(), "{text}");
            assert!(p.verify(b"secret"), "{text}");
            assert!(!p.verify(b"Secret"), "{text}");
            assert!(!p.verify(b""), "{text}");
        }
        let plain = Password::parse("secret").unwrap();
        assert!(plain.is_plain() && plain.verify(b"secret") && !plain.verify(b"secreT"));
        assert!(Password::parse("{MD5}abc").is_err());
        assert!(Password::parse("{SSHA}not base64!").is_err());
        assert!(
            Password::parse("{SSHA}c2hvcnQ=").is_err(),
            "shorter than a digest"
        );
        assert!(Password::parse("{ARGON2}nonsense").is_err());
        assert!(!format!("{plain:?}").contains("secret"), "never printed");
    }
}
