//! The server's settings, from the configuration file and the command line.
//!
//! Every setting has one name, used both as the long option (`--max-ttl`)
//! and as the keyword of `ilsd.conf` (`max-ttl 3600`); [`SETTINGS`] lists
//! them for the option parser, `--help` and the man page test. The command
//! line is applied after the file, so it wins. Read on the main thread at
//! start and again on reload.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::auth::moderation::{Cidr, NamePattern};
use crate::auth::{NtlmMode, Password, admin_identity};
use crate::directory::dn::Dn;
use crate::server::config::{Config, MAX_WORKERS};
use crate::session::{Account, Ownership};

/// One setting: its name, an argument hint, and one line of help.
pub struct Setting {
    pub name: &'static str,
    pub hint: &'static str,
    pub help: &'static str,
    /// Whether it may be given more than once (each adds a value).
    pub repeatable: bool,
    /// Whether it is a flag on the command line (`--observed-ip`), and
    /// `yes` or `no` in the file.
    pub flag: bool,
}

/// Every setting, in the order `--help` lists them.
pub const SETTINGS: &[Setting] = &[
    Setting {
        name: "listen",
        hint: "ADDR:PORT",
        help: "listen on this address; '[::]:P dual' takes IPv4 too (repeatable; default 0.0.0.0:1002)",
        repeatable: true,
        flag: false,
    },
    Setting {
        name: "default-ttl",
        hint: "SECONDS",
        help: "TTL of a dynamic entry created without one (default 1800)",
        repeatable: false,
        flag: false,
    },
    Setting {
        name: "min-ttl",
        hint: "SECONDS",
        help: "shortest TTL; shorter requests are raised (default 10)",
        repeatable: false,
        flag: false,
    },
    Setting {
        name: "max-ttl",
        hint: "SECONDS",
        help: "longest TTL; longer requests are lowered (default 86400)",
        repeatable: false,
        flag: false,
    },
    Setting {
        name: "workers",
        hint: "N",
        help: "worker threads kept ready for connections (default 4)",
        repeatable: false,
        flag: false,
    },
    Setting {
        name: "max-connections",
        hint: "N",
        help: "most connections served at once (default 4096)",
        repeatable: false,
        flag: false,
    },
    Setting {
        name: "max-connections-per-address",
        hint: "N",
        help: "most connections from one IP address at once (default 256)",
        repeatable: false,
        flag: false,
    },
    Setting {
        name: "bind-failures",
        hint: "N",
        help: "failed binds from one address in a minute before its binds wait, 0 for never (default 5)",
        repeatable: false,
        flag: false,
    },
    Setting {
        name: "bind-delay-max",
        hint: "SECONDS",
        help: "longest wait of a bind after failures (default 30)",
        repeatable: false,
        flag: false,
    },
    Setting {
        name: "idle-timeout",
        hint: "SECONDS",
        help: "close a connection idle this long (default 300)",
        repeatable: false,
        flag: false,
    },
    Setting {
        name: "stop-timeout",
        hint: "SECONDS",
        help: "at a stop, close connections still busy after this long (default 10)",
        repeatable: false,
        flag: false,
    },
    Setting {
        name: "max-request-size",
        hint: "BYTES",
        help: "largest request accepted (default 262144)",
        repeatable: false,
        flag: false,
    },
    Setting {
        name: "max-request-elements",
        hint: "N",
        help: "most BER elements (names, values, filter terms) in one request (default 10000)",
        repeatable: false,
        flag: false,
    },
    Setting {
        name: "max-values",
        hint: "N",
        help: "most attribute values one entry may hold (default 256)",
        repeatable: false,
        flag: false,
    },
    Setting {
        name: "max-memory",
        hint: "BYTES",
        help: "most memory the entries may take, estimated, 0 for no limit (default 512M)",
        repeatable: false,
        flag: false,
    },
    Setting {
        name: "size-limit",
        hint: "N",
        help: "most entries one search returns, 0 for no limit (default 0)",
        repeatable: false,
        flag: false,
    },
    Setting {
        name: "time-limit",
        hint: "SECONDS",
        help: "longest time one search runs, 0 for no limit (default 0)",
        repeatable: false,
        flag: false,
    },
    Setting {
        name: "account",
        hint: "'DN PASSWORD'",
        help: "an account for simple binds, one argument (repeatable)",
        repeatable: true,
        flag: false,
    },
    Setting {
        name: "admin",
        hint: "DN",
        help: "an administrator: may change or delete any entry and read ilsOwner (repeatable)",
        repeatable: true,
        flag: false,
    },
    Setting {
        name: "ownership",
        hint: "MODE",
        help: "who may change an entry: address, identity or none (default address)",
        repeatable: false,
        flag: false,
    },
    Setting {
        name: "deny-name",
        hint: "PATTERN",
        help: "refuse names matching this * glob in cn, givenName, surName, comment, location (repeatable)",
        repeatable: true,
        flag: false,
    },
    Setting {
        name: "deny-address",
        hint: "CIDR",
        help: "refuse writes from this address block (repeatable)",
        repeatable: true,
        flag: false,
    },
    Setting {
        name: "deny-address-search",
        hint: "",
        help: "refuse searches from denied addresses too (in the file: yes or no; default no)",
        repeatable: false,
        flag: true,
    },
    Setting {
        name: "state-file",
        hint: "PATH",
        help: "keep the dynamic entries in this LDIF file across restarts (default none)",
        repeatable: false,
        flag: false,
    },
    Setting {
        name: "state-interval",
        hint: "SECONDS",
        help: "write the state file this often (default 60)",
        repeatable: false,
        flag: false,
    },
    Setting {
        name: "ntlm",
        hint: "MODE",
        help: "NTLM logons: accept-any, verify or off (default verify with ntlm-accounts, else accept-any)",
        repeatable: false,
        flag: false,
    },
    Setting {
        name: "ntlm-accounts",
        hint: "FILE",
        help: "NTLM accounts in smbpasswd format (pdbedit -e smbpasswd:FILE, or ilsd --nt-hash)",
        repeatable: false,
        flag: false,
    },
    Setting {
        name: "ntlm-helper",
        hint: "COMMAND",
        help: "check NTLM logons with a domain through this helper (ntlm_auth --helper-protocol=ntlm-server-1)",
        repeatable: false,
        flag: false,
    },
    Setting {
        name: "ntlm-helpers",
        hint: "N",
        help: "most helper processes at once (default 4)",
        repeatable: false,
        flag: false,
    },
    Setting {
        name: "ntlm-helper-timeout",
        hint: "SECONDS",
        help: "longest wait for a helper's answer (default 5)",
        repeatable: false,
        flag: false,
    },
    Setting {
        name: "ntlm-v1",
        hint: "",
        help: "also take NTLMv1 responses (in the file: yes or no; default no)",
        repeatable: false,
        flag: true,
    },
    Setting {
        name: "http-listen",
        hint: "ADDR:PORT",
        help: "serve the who-is-online page and /metrics over HTTP here (repeatable; default none)",
        repeatable: true,
        flag: false,
    },
    Setting {
        name: "http-allow",
        hint: "CIDR",
        help: "who may see the HTTP pages; others get 403 (repeatable; default loopback)",
        repeatable: true,
        flag: false,
    },
    Setting {
        name: "http-show-addresses",
        hint: "",
        help: "show users' IP addresses on the page (in the file: yes or no; default no)",
        repeatable: false,
        flag: true,
    },
    Setting {
        name: "http-host",
        hint: "NAME",
        help: "a name the HTTP pages answer to in Host, besides addresses and localhost (repeatable)",
        repeatable: true,
        flag: false,
    },
    Setting {
        name: "http-threads",
        hint: "N",
        help: "threads serving HTTP (default 2)",
        repeatable: false,
        flag: false,
    },
    Setting {
        name: "http-max-connections",
        hint: "N",
        help: "HTTP connections waiting for a thread; more get 503 (default 64)",
        repeatable: false,
        flag: false,
    },
    Setting {
        name: "http-timeout",
        hint: "SECONDS",
        help: "longest an HTTP request may take to arrive or its answer to leave (default 10)",
        repeatable: false,
        flag: false,
    },
    Setting {
        name: "publish-uri",
        hint: "URI",
        help: "publish this server in Active Directory through this DC: ldaps://HOST or ldap://HOST (StartTLS)",
        repeatable: false,
        flag: false,
    },
    Setting {
        name: "publish-bind",
        hint: "ACCOUNT",
        help: "the account that publishes: a DN or user@realm",
        repeatable: false,
        flag: false,
    },
    Setting {
        name: "publish-password-file",
        hint: "FILE",
        help: "the file whose first line is publish-bind's password",
        repeatable: false,
        flag: false,
    },
    Setting {
        name: "publish-name",
        hint: "NAME",
        help: "the name published (default the host's fully qualified name)",
        repeatable: false,
        flag: false,
    },
    Setting {
        name: "publish-base",
        hint: "DN",
        help: "the domain's naming context (default the DC's defaultNamingContext)",
        repeatable: false,
        flag: false,
    },
    Setting {
        name: "publish-ca-file",
        hint: "FILE",
        help: "the CA certificates the DC's certificate must chain to, PEM (default the system's)",
        repeatable: false,
        flag: false,
    },
    Setting {
        name: "publish-insecure",
        hint: "",
        help: "let an ldap:// publish-uri go without TLS (in the file: yes or no; default no)",
        repeatable: false,
        flag: true,
    },
    Setting {
        name: "publish-address",
        hint: "ADDR:PORT",
        help: "an address to publish (repeatable; default those of listen, wildcards as the host's)",
        repeatable: true,
        flag: false,
    },
    Setting {
        name: "publish-timeout",
        hint: "SECONDS",
        help: "longest wait for each step of an exchange with the DC (default 10)",
        repeatable: false,
        flag: false,
    },
    Setting {
        name: "ntlm-domain",
        hint: "DOMAIN",
        help: "the domain name NTLM challenges give (default the host's DNS domain)",
        repeatable: false,
        flag: false,
    },
    Setting {
        name: "ntlm-hostname",
        hint: "NAME",
        help: "the computer name NTLM challenges give (default the host's name)",
        repeatable: false,
        flag: false,
    },
    Setting {
        name: "observed-ip",
        hint: "",
        help: "store the connection's IPv4 address as ipAddress (in the file: yes or no; default no)",
        repeatable: false,
        flag: true,
    },
    Setting {
        name: "log-level",
        hint: "LEVEL",
        help: "off, error, warn, info, debug or trace (default info)",
        repeatable: false,
        flag: false,
    },
    Setting {
        name: "user",
        hint: "USER",
        help: "run as this user once the sockets are bound",
        repeatable: false,
        flag: false,
    },
    Setting {
        name: "group",
        hint: "GROUP",
        help: "run as this group once the sockets are bound",
        repeatable: false,
        flag: false,
    },
];

/// A bad setting, with where it came from when it came from a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub source: Option<(PathBuf, usize)>,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.source {
            Some((path, line)) => write!(f, "{}:{}: {}", path.display(), line, self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for ConfigError {}

fn number<T>(value: &str, min: T) -> Result<T, String>
where
    T: std::str::FromStr + PartialOrd + fmt::Display,
{
    let n: T = value.parse().map_err(|_| {
        if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
            format!("{value} is too large")
        } else {
            format!("'{value}' is not a number")
        }
    })?;
    if n < min {
        return Err(format!("{value} is below the minimum of {min}"));
    }
    Ok(n)
}

/// A size in bytes, with an optional K, M or G for KiB, MiB or GiB.
fn bytes(value: &str, min: usize) -> Result<usize, String> {
    let (digits, shift) = match value.as_bytes().last() {
        Some(b'k' | b'K') => (&value[..value.len() - 1], 10),
        Some(b'm' | b'M') => (&value[..value.len() - 1], 20),
        Some(b'g' | b'G') => (&value[..value.len() - 1], 30),
        _ => (value, 0),
    };
    let n: usize = number(digits, 0).map_err(|_| format!("'{value}' is not a size"))?;
    let n = n
        .checked_mul(1 << shift)
        .ok_or_else(|| format!("{value} is too large"))?;
    if n < min {
        return Err(format!("{value} is below the minimum of {min}"));
    }
    Ok(n)
}

fn yes_or_no(value: &str) -> Result<bool, String> {
    match value {
        "yes" | "true" | "on" | "1" | "" => Ok(true),
        "no" | "false" | "off" | "0" => Ok(false),
        _ => Err(format!("'{value}' is not yes or no")),
    }
}

impl Config {
    /// Applies one setting. `fresh` clears a repeatable setting's earlier
    /// values first (the command line replaces what the file listed).
    pub fn set(&mut self, name: &str, value: &str, fresh: bool) -> Result<(), String> {
        let value = value.trim();
        match name {
            "listen" => {
                if fresh {
                    self.listen.clear();
                    self.dual_stack.clear();
                }
                let (addr, dual) = match value.split_once(char::is_whitespace) {
                    Some((addr, "dual")) => (addr, true),
                    Some(_) => {
                        return Err(format!("'{value}': only 'dual' may follow the address"));
                    }
                    None => (value, false),
                };
                let addr: std::net::SocketAddr = addr
                    .parse()
                    .map_err(|_| format!("'{addr}' is not an address:port (IPv6 as [::1]:1002)"))?;
                if dual {
                    if addr.is_ipv4() {
                        return Err(format!("{addr}: only an IPv6 address can be dual"));
                    }
                    self.dual_stack.push(addr);
                }
                self.listen.push(addr);
            }
            "default-ttl" => self.default_ttl = number(value, 1)?,
            "min-ttl" => self.min_ttl = number(value, 1)?,
            "max-ttl" => self.max_ttl = number(value, 1)?,
            "workers" => {
                self.workers = number(value, 1)?;
                if self.workers > MAX_WORKERS {
                    return Err(format!("{value} is above the maximum of {MAX_WORKERS}"));
                }
            }
            "max-connections" => self.max_connections = number(value, 1)?,
            "max-connections-per-address" => self.max_connections_per_address = number(value, 1)?,
            "bind-failures" => self.bind_failures = number(value, 0)?,
            "bind-delay-max" => self.bind_delay_max = Duration::from_secs(number(value, 1)?),
            "idle-timeout" => self.idle_timeout = Duration::from_secs(number(value, 1)?),
            "stop-timeout" => self.stop_timeout = Duration::from_secs(number(value, 0)?),
            "max-request-size" => self.max_request_size = bytes(value, 64)?,
            "max-request-elements" => self.max_request_elements = number(value, 64)?,
            "max-memory" => self.max_memory = bytes(value, 0)?,
            "max-values" => self.max_values = number(value, 16)?,
            "size-limit" => self.size_limit = number(value, 0)?,
            "time-limit" => self.time_limit = number(value, 0)?,
            "account" => {
                if fresh {
                    self.accounts.clear();
                }
                let (dn, password) = value
                    .rsplit_once(char::is_whitespace)
                    .ok_or("an account is 'DN PASSWORD'")?;
                let dn = Dn::parse(dn.trim().as_bytes())
                    .map_err(|_| format!("'{}' is not a DN", dn.trim()))?;
                self.accounts.push(Account {
                    key: dn.key(),
                    password: Password::parse(password)?,
                });
            }
            "admin" => {
                if fresh {
                    self.admins.clear();
                }
                self.admins.push(admin_identity(value)?);
            }
            "ownership" => {
                self.ownership = match value {
                    "address" => Ownership::Address,
                    "identity" => Ownership::Identity,
                    "none" => Ownership::None,
                    _ => return Err(format!("'{value}' is not address, identity or none")),
                }
            }
            "deny-name" => {
                if fresh {
                    self.moderation.names.clear();
                }
                self.moderation.names.push(NamePattern::parse(value)?);
            }
            "deny-address" => {
                if fresh {
                    self.moderation.addresses.clear();
                }
                self.moderation.addresses.push(Cidr::parse(value)?);
            }
            "deny-address-search" => self.moderation.address_search = yes_or_no(value)?,
            "state-file" if value.is_empty() => return Err("state-file needs a path".into()),
            "state-file" => self.state_file = Some(PathBuf::from(value)),
            "state-interval" => self.state_interval = Duration::from_secs(number(value, 1)?),
            "observed-ip" => self.observed_ip = yes_or_no(value)?,
            "ntlm" => {
                self.ntlm = Some(match value {
                    "accept-any" => NtlmMode::AcceptAny,
                    "verify" => NtlmMode::Verify,
                    "off" => NtlmMode::Off,
                    _ => return Err(format!("'{value}' is not accept-any, verify or off")),
                })
            }
            "ntlm-accounts" | "ntlm-domain" | "ntlm-hostname" if value.is_empty() => {
                return Err(format!("{name} needs a value"));
            }
            "ntlm-accounts" => self.ntlm_accounts = Some(PathBuf::from(value)),
            "ntlm-v1" => self.ntlm_v1 = yes_or_no(value)?,
            "ntlm-helper" if value.is_empty() => return Err("ntlm-helper needs a command".into()),
            "ntlm-helper" => {
                self.ntlm_helper = Some(value.split_whitespace().map(str::to_string).collect())
            }
            "ntlm-helpers" => self.ntlm_helpers = number(value, 1)?,
            "ntlm-helper-timeout" => {
                self.ntlm_helper_timeout = Duration::from_secs(number(value, 1)?)
            }
            "http-listen" => {
                if fresh {
                    self.http_listen.clear();
                }
                let addr: std::net::SocketAddr = value.parse().map_err(|_| {
                    format!("'{value}' is not an address:port (IPv6 as [::1]:8002)")
                })?;
                self.http_listen.push(addr);
            }
            "http-allow" => {
                if fresh {
                    self.http_allow.clear();
                }
                self.http_allow.push(Cidr::parse(value)?);
            }
            "http-show-addresses" => self.http_show_addresses = yes_or_no(value)?,
            "http-host" if value.is_empty() || value.contains(char::is_whitespace) => {
                return Err("http-host needs one name".into());
            }
            "http-host" => {
                if fresh {
                    self.http_hosts.clear();
                }
                self.http_hosts.push(value.to_string());
            }
            "http-threads" => {
                self.http_threads = number(value, 1)?;
                if self.http_threads > 64 {
                    return Err(format!("{value} is above the maximum of 64"));
                }
            }
            "http-max-connections" => self.http_max_connections = number(value, 1)?,
            "http-timeout" => self.http_timeout = Duration::from_secs(number(value, 1)?),
            "publish-uri" => {
                crate::publish::client::Uri::parse(value)?;
                self.publish_uri = Some(value.to_string());
            }
            "publish-bind"
            | "publish-password-file"
            | "publish-name"
            | "publish-base"
            | "publish-ca-file"
                if value.is_empty() =>
            {
                return Err(format!("{name} needs a value"));
            }
            "publish-bind" => self.publish_bind = Some(value.to_string()),
            "publish-password-file" => self.publish_password_file = Some(PathBuf::from(value)),
            "publish-name" => self.publish_name = Some(value.to_string()),
            "publish-base" => {
                Dn::parse(value.as_bytes()).map_err(|_| format!("'{value}' is not a DN"))?;
                self.publish_base = Some(value.to_string());
            }
            "publish-ca-file" => self.publish_ca_file = Some(PathBuf::from(value)),
            "publish-insecure" => self.publish_insecure = yes_or_no(value)?,
            "publish-address" => {
                if fresh {
                    self.publish_address.clear();
                }
                let addr: std::net::SocketAddr = value
                    .parse()
                    .map_err(|_| format!("'{value}' is not an address:port"))?;
                if addr.ip().is_unspecified() {
                    return Err(format!("{value}: a published address cannot be a wildcard"));
                }
                self.publish_address.push(addr);
            }
            "publish-timeout" => self.publish_timeout = Duration::from_secs(number(value, 1)?),
            "ntlm-domain" => self.ntlm_domain = Some(value.to_string()),
            "ntlm-hostname" => self.ntlm_hostname = Some(value.to_string()),
            "log-level" => {
                self.log_level = value
                    .parse()
                    .map_err(|_| format!("'{value}' is not a log level"))?
            }
            "user" | "group" if value.is_empty() => return Err(format!("{name} needs a name")),
            "user" => self.user = Some(value.to_string()),
            "group" => self.group = Some(value.to_string()),
            _ => return Err(format!("unknown keyword '{name}'")),
        }
        Ok(())
    }

    /// Applies a configuration file's text.
    pub fn apply_file(&mut self, path: &Path, text: &str) -> Result<(), ConfigError> {
        let mut seen: Vec<&str> = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.split('#').next().unwrap_or_default().trim();
            if line.is_empty() {
                continue;
            }
            let (keyword, value) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
            let fresh = !seen.contains(&keyword);
            seen.push(keyword);
            self.set(keyword, value, fresh)
                .map_err(|message| ConfigError {
                    source: Some((path.to_path_buf(), i + 1)),
                    message,
                })?;
        }
        Ok(())
    }

    /// Reads a configuration file. A missing file is an error only when
    /// `required` (named by the administrator rather than the default).
    pub fn load_file(&mut self, path: &Path, required: bool) -> Result<(), ConfigError> {
        match std::fs::read_to_string(path) {
            Ok(text) => self.apply_file(path, &text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => Ok(()),
            Err(e) => Err(ConfigError {
                source: None,
                message: format!("cannot read {}: {e}", path.display()),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_keywords_are_the_option_names() {
        let mut c = Config::default();
        let text = "# comment\nlisten 127.0.0.1:1\nlisten [::1]:2  # two\nmax-ttl 60\nmin-ttl 1\naccount cn=admin,o=Intranet secret\nobserved-ip yes\n";
        c.apply_file(Path::new("x.conf"), text).unwrap();
        assert_eq!(c.listen.len(), 2);
        assert_eq!(c.max_ttl, 60);
        assert_eq!(c.accounts[0].key, b"cn=admin,o=intranet");
        assert!(c.accounts[0].password.verify(b"secret"));
        assert!(c.observed_ip);
        for s in SETTINGS {
            let mut probe = Config::default();
            let err = probe.set(s.name, "", true).err().unwrap_or_default();
            assert!(
                !err.contains("unknown keyword"),
                "{} is not handled",
                s.name
            );
        }
    }

    #[test]
    fn errors_name_the_file_and_line() {
        let mut c = Config::default();
        let err = c
            .apply_file(Path::new("/etc/ilsd/ilsd.conf"), "max-ttl 60\nbogus 1\n")
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "/etc/ilsd/ilsd.conf:2: unknown keyword 'bogus'"
        );
        let err = c.apply_file(Path::new("f"), "max-ttl soon").unwrap_err();
        assert_eq!(err.to_string(), "f:1: 'soon' is not a number");
        let err = c.apply_file(Path::new("f"), "min-ttl 0").unwrap_err();
        assert!(err.to_string().contains("minimum"));
        let err = c
            .apply_file(Path::new("f"), "max-ttl 4294967296")
            .unwrap_err();
        assert_eq!(err.to_string(), "f:1: 4294967296 is too large");
        let err = c.apply_file(Path::new("f"), "workers 10001").unwrap_err();
        assert_eq!(err.to_string(), "f:1: 10001 is above the maximum of 10000");
        c.apply_file(Path::new("f"), "workers 10000").unwrap();
    }

    #[test]
    fn sizes_take_k_m_and_g() {
        let mut c = Config::default();
        c.set("max-memory", "512M", true).unwrap();
        assert_eq!(c.max_memory, 512 << 20);
        c.set("max-memory", "2g", true).unwrap();
        assert_eq!(c.max_memory, 2 << 30);
        c.set("max-memory", "0", true).unwrap();
        assert_eq!(c.max_memory, 0);
        c.set("max-request-size", "64k", true).unwrap();
        assert_eq!(c.max_request_size, 64 << 10);
        c.set("max-request-size", "100", true).unwrap();
        assert_eq!(c.max_request_size, 100);
        for bad in ["M", "1.5G", "-1K", "12T", "17179869184G"] {
            assert!(c.set("max-memory", bad, true).is_err(), "{bad}");
        }
        assert!(c.set("max-request-size", "32", true).is_err(), "minimum");
        assert_eq!(c.max_request_size, 100);
    }

    #[test]
    fn min_above_max_is_refused() {
        let c = Config {
            min_ttl: 100,
            max_ttl: 10,
            ..Config::default()
        };
        assert!(c.validate().is_err());
    }
}
