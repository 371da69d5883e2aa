//! What a server is told: every setting, with its default.
//!
//! Filled in by the daemon from the configuration file and the command
//! line ([`crate::daemon::config`] reads them), or by a test or an
//! embedding program directly; read by [`super::Server`] at start and on
//! reload, on the thread that calls them.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::auth::helper::{HelperPool, basic_command};
use crate::auth::moderation::{Cidr, Moderation};
use crate::auth::ntlm::Names;
use crate::auth::{NtlmMode, NtlmPolicy};
use crate::directory::store::{DEFAULT_TTL, MAX_TTL, MIN_TTL};
use crate::http;
use crate::session::{Account, Limits, Ownership};

/// The most worker threads kept ready: each is a thread with its stack,
/// started before the first client.
pub const MAX_WORKERS: usize = 10_000;

/// Everything the server can be told.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    pub listen: Vec<SocketAddr>,
    /// The IPv6 addresses of `listen` that take IPv4 clients too
    /// (`listen [::]:1002 dual`); every other IPv6 listener is IPv6 only.
    pub dual_stack: Vec<SocketAddr>,
    pub default_ttl: u32,
    pub min_ttl: u32,
    pub max_ttl: u32,
    pub workers: usize,
    pub max_connections: usize,
    pub max_connections_per_address: usize,
    pub bind_failures: u32,
    pub bind_delay_max: Duration,
    pub idle_timeout: Duration,
    pub stop_timeout: Duration,
    pub max_request_size: usize,
    /// Most BER elements in one request: decoding one costs some hundred
    /// bytes whatever its size.
    pub max_request_elements: usize,
    pub max_values: usize,
    pub max_memory: usize,
    pub size_limit: usize,
    pub time_limit: u64,
    pub accounts: Vec<Account>,
    /// Authorization IDs of the administrators (`admin`).
    pub admins: Vec<String>,
    pub ownership: Ownership,
    pub moderation: Moderation,
    /// What NTLM logons prove; by default `verify` with accounts and
    /// `accept-any` without.
    pub ntlm: Option<NtlmMode>,
    /// The smbpasswd file of NTLM accounts (`ntlm-accounts`).
    pub ntlm_accounts: Option<PathBuf>,
    pub ntlm_v1: bool,
    /// The pass-through helper command (`ntlm-helper`), split into words.
    pub ntlm_helper: Option<Vec<String>>,
    /// Most helper processes at once.
    pub ntlm_helpers: usize,
    /// The longest a logon waits for a helper's answer.
    pub ntlm_helper_timeout: Duration,
    pub ntlm_domain: Option<String>,
    pub ntlm_hostname: Option<String>,
    /// Where the HTTP pages and metrics are served (`http-listen`); none
    /// serves no HTTP.
    pub http_listen: Vec<SocketAddr>,
    /// Who may see them.
    pub http_allow: Vec<Cidr>,
    pub http_show_addresses: bool,
    /// Names the pages answer to besides addresses and localhost.
    pub http_hosts: Vec<String>,
    pub http_threads: usize,
    pub http_max_connections: usize,
    pub http_timeout: Duration,
    /// The domain controller to publish in (`publish-uri`): none
    /// publishes nothing.
    pub publish_uri: Option<String>,
    pub publish_bind: Option<String>,
    pub publish_password_file: Option<PathBuf>,
    pub publish_name: Option<String>,
    pub publish_base: Option<String>,
    pub publish_ca_file: Option<PathBuf>,
    /// Whether an `ldap://` URI may go without StartTLS.
    pub publish_insecure: bool,
    /// The addresses to publish; none publishes those of `listen`.
    pub publish_address: Vec<SocketAddr>,
    pub publish_timeout: Duration,
    pub observed_ip: bool,
    /// Where the dynamic entries are kept across a restart (`state-file`);
    /// none keeps them in memory only.
    pub state_file: Option<PathBuf>,
    /// How often the state file is written.
    pub state_interval: Duration,
    pub log_level: log::LevelFilter,
    pub user: Option<String>,
    pub group: Option<String>,
}

impl Default for Config {
    fn default() -> Config {
        let limits = Limits::default();
        Config {
            listen: vec![SocketAddr::from(([0, 0, 0, 0], 1002))],
            dual_stack: Vec::new(),
            default_ttl: DEFAULT_TTL,
            min_ttl: MIN_TTL,
            max_ttl: MAX_TTL,
            workers: 4,
            max_connections: limits.max_connections,
            max_connections_per_address: limits.max_connections_per_address,
            bind_failures: limits.bind_failures,
            bind_delay_max: limits.bind_delay_max,
            idle_timeout: limits.idle_timeout,
            stop_timeout: limits.stop_timeout,
            max_request_size: limits.max_request_size,
            max_request_elements: limits.max_request_elements,
            max_values: limits.max_values,
            max_memory: 512 << 20,
            size_limit: limits.size_limit,
            time_limit: limits.time_limit,
            accounts: limits.accounts,
            admins: limits.admins,
            ownership: limits.ownership,
            moderation: limits.moderation,
            ntlm: None,
            ntlm_accounts: None,
            ntlm_v1: false,
            ntlm_helper: None,
            ntlm_helpers: 4,
            ntlm_helper_timeout: Duration::from_secs(5),
            ntlm_domain: None,
            ntlm_hostname: None,
            http_listen: Vec::new(),
            http_allow: default_http_allow(),
            http_show_addresses: false,
            http_hosts: Vec::new(),
            http_threads: 2,
            http_max_connections: 64,
            http_timeout: Duration::from_secs(10),
            publish_uri: None,
            publish_bind: None,
            publish_password_file: None,
            publish_name: None,
            publish_base: None,
            publish_ca_file: None,
            publish_insecure: false,
            publish_address: Vec::new(),
            publish_timeout: Duration::from_secs(10),
            observed_ip: limits.observed_ip,
            state_file: None,
            state_interval: Duration::from_secs(60),
            log_level: log::LevelFilter::Info,
            user: None,
            group: None,
        }
    }
}

/// Loopback only: the pages show who is online, which is the
/// administrator's to open to more.
pub fn default_http_allow() -> Vec<Cidr> {
    ["127.0.0.0/8", "::1"]
        .iter()
        .filter_map(|c| Cidr::parse(c).ok())
        .collect()
}

impl Config {
    /// What the HTTP side is given.
    pub fn http(&self) -> http::Settings {
        http::Settings {
            policy: http::Policy {
                allow: self.http_allow.clone(),
                show_addresses: self.http_show_addresses,
                hosts: self.http_hosts.clone(),
            },
            threads: self.http_threads,
            max_connections: self.http_max_connections,
            timeout: self.http_timeout,
        }
    }

    /// The limits the operations read on every request.
    pub fn limits(&self) -> Limits {
        Limits {
            accounts: self.accounts.clone(),
            admins: self.admins.clone(),
            ownership: self.ownership,
            moderation: self.moderation.clone(),
            ntlm: NtlmPolicy {
                mode: self.ntlm_mode(),
                accounts: Default::default(),
                helper: self.ntlm_helper.as_ref().map(|command| {
                    Arc::new(HelperPool::new(
                        command.clone(),
                        self.ntlm_helpers,
                        self.ntlm_helper_timeout,
                    ))
                }),
                basic_helper: self.ntlm_helper.as_ref().map(|command| {
                    Arc::new(HelperPool::new(
                        basic_command(command),
                        self.ntlm_helpers,
                        self.ntlm_helper_timeout,
                    ))
                }),
                names: Names::new(self.ntlm_domain.as_deref(), self.ntlm_hostname.as_deref()),
                allow_v1: self.ntlm_v1,
            },
            observed_ip: self.observed_ip,
            size_limit: self.size_limit,
            time_limit: self.time_limit,
            max_request_size: self.max_request_size,
            max_request_elements: self.max_request_elements,
            max_values: self.max_values,
            idle_timeout: self.idle_timeout,
            stop_timeout: self.stop_timeout,
            max_connections: self.max_connections,
            max_connections_per_address: self.max_connections_per_address,
            bind_failures: self.bind_failures,
            bind_delay_max: self.bind_delay_max,
        }
    }

    /// What NTLM logons prove: as set, or else `verify` when there are
    /// accounts to verify against and `accept-any` when there are none.
    pub fn ntlm_mode(&self) -> NtlmMode {
        match self.ntlm {
            Some(mode) => mode,
            None if self.ntlm_accounts.is_some() || self.ntlm_helper.is_some() => NtlmMode::Verify,
            None => NtlmMode::AcceptAny,
        }
    }

    /// Checks that the settings fit together.
    pub fn validate(&self) -> Result<(), String> {
        if self.min_ttl > self.max_ttl {
            return Err(format!(
                "min-ttl {} is above max-ttl {}",
                self.min_ttl, self.max_ttl
            ));
        }
        if self.ntlm == Some(NtlmMode::Verify)
            && self.ntlm_accounts.is_none()
            && self.ntlm_helper.is_none()
        {
            return Err(
                "ntlm verify needs accounts to verify against (ntlm-accounts or ntlm-helper)"
                    .into(),
            );
        }
        if self.publish_bind.is_some() != self.publish_password_file.is_some() {
            return Err("publish-bind and publish-password-file go together".into());
        }
        let publish_set = self.publish_bind.is_some()
            || self.publish_name.is_some()
            || self.publish_base.is_some()
            || self.publish_ca_file.is_some()
            || !self.publish_address.is_empty();
        if publish_set && self.publish_uri.is_none() {
            return Err("the publish- settings need publish-uri, the domain controller".into());
        }
        if self.publish_insecure
            && self
                .publish_uri
                .as_deref()
                .is_some_and(|u| u.starts_with("ldaps://"))
        {
            return Err("publish-insecure is for an ldap:// publish-uri; ldaps:// is TLS".into());
        }
        if self.listen.is_empty() {
            return Err("nothing to listen on".into());
        }
        for (i, addr) in self.listen.iter().enumerate() {
            if self.listen[..i].contains(addr) {
                return Err(format!("listen {addr} is given twice"));
            }
        }
        for (i, addr) in self.http_listen.iter().enumerate() {
            if self.http_listen[..i].contains(addr) {
                return Err(format!("http-listen {addr} is given twice"));
            }
            if self.listen.contains(addr) && addr.port() != 0 {
                return Err(format!("{addr} is both listen and http-listen"));
            }
        }
        Ok(())
    }
}
