//! Publication in Active Directory ([MS-TAIL] 3.5.8 to 3.5.10): the
//! server's serviceInstance under `CN=WinsockServices,CN=System,<base>`,
//! its addresses while it serves, and the listing of the ILS servers a
//! domain knows.
//!
//! [`Publisher::start`] runs the `ilsd-publish` thread: it publishes once
//! the listeners are bound, and when the domain controller is down or
//! refuses, logs why and tries again later, doubling the wait up to five
//! minutes; the ILS service never waits for it. [`Publisher::stop`] has
//! the thread withdraw the addresses (3.5.10) within a bounded time.
//! [`list_servers`] runs on the main thread for `ilsd --list-servers`.

pub mod client;
pub mod winsock;

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use ldap3_proto::proto::{
    LdapFilter, LdapModify, LdapModifyType, LdapPartialAttribute, LdapResultCode, LdapSearchScope,
};

use client::{Client, Error, Security, Uri};

/// The first wait after a failed attempt; it doubles up to [`MAX_RETRY`].
const FIRST_RETRY: Duration = Duration::from_secs(2);
const MAX_RETRY: Duration = Duration::from_secs(300);

/// How often a publication is made again: an entry deleted or changed in
/// the domain meanwhile is put right.
const REPUBLISH: Duration = Duration::from_secs(3600);

/// Where and as whom the server publishes itself.
#[derive(Clone, Debug)]
pub struct Settings {
    pub uri: Uri,
    pub security: Security,
    pub ca_file: Option<PathBuf>,
    /// The account to bind as (a DN or `user@realm`), and its password;
    /// `None` binds anonymously (enough for listing in some domains).
    pub bind: Option<(String, Secret)>,
    /// The serviceInstance's name: the host's fully qualified name.
    pub name: Option<String>,
    /// The domain's naming context; `None` asks the DC's root DSE.
    pub base: Option<String>,
    /// Each network step's timeout.
    pub timeout: Duration,
}

/// A password that never shows in a log or a debug print.
#[derive(Clone)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// A session with the domain controller, bound, and the container the
/// ILS servers live in.
struct Session {
    client: Client,
    /// `CN=WinsockServices,CN=System,<base>`.
    container: String,
    base: String,
}

impl Settings {
    /// Connects and binds.
    fn connect(&self) -> Result<Client, Error> {
        let tls = match self.security {
            Security::Plain => None,
            _ => Some(client::tls_config(self.ca_file.as_deref())?),
        };
        let mut client = Client::connect(&self.uri, self.security, tls.as_ref(), self.timeout)?;
        if let Some((who, password)) = &self.bind {
            client.bind(who, &password.0)?;
        }
        Ok(client)
    }

    /// Connects, binds and learns the naming context.
    fn open(&self) -> Result<Session, Error> {
        let mut client = self.connect()?;
        let base = match &self.base {
            Some(base) => base.clone(),
            None => naming_context(&mut client)?,
        };
        Ok(Session {
            client,
            container: format!("CN=WinsockServices,CN=System,{base}"),
            base,
        })
    }

    /// The serviceInstance's name: `publish-name`, or the host name, with
    /// the domain of the base DN added when the host name has no dots.
    fn instance_name(&self, base: &str) -> String {
        if let Some(name) = &self.name {
            return name.clone();
        }
        let host = nix::unistd::gethostname()
            .ok()
            .and_then(|h| h.into_string().ok())
            .unwrap_or_else(|| "ilsd".into());
        let domain = dns_domain(base);
        if host.contains('.') || domain.is_empty() {
            host
        } else {
            format!("{host}.{domain}")
        }
    }
}

/// The defaultNamingContext of the server's root DSE.
fn naming_context(client: &mut Client) -> Result<String, Error> {
    let entries = client.search(
        "",
        LdapSearchScope::Base,
        LdapFilter::Present("objectClass".into()),
        &["defaultNamingContext"],
    )?;
    entries
        .iter()
        .flat_map(|e| &e.attributes)
        .find(|a| a.atype.eq_ignore_ascii_case("defaultNamingContext"))
        .and_then(|a| a.vals.first())
        .and_then(|v| String::from_utf8(v.clone()).ok())
        .filter(|v| !v.is_empty())
        .ok_or_else(|| {
            Error::Protocol("the root DSE names no defaultNamingContext (set publish-base)".into())
        })
}

/// `ils.example.org` for `DC=ils,DC=example,DC=org`.
fn dns_domain(base: &str) -> String {
    base.split(',')
        .filter_map(|rdn| {
            let (attr, value) = rdn.split_once('=')?;
            attr.trim()
                .eq_ignore_ascii_case("dc")
                .then(|| value.trim().to_string())
        })
        .collect::<Vec<_>>()
        .join(".")
}

fn attr(name: &str, values: Vec<Vec<u8>>) -> LdapPartialAttribute {
    LdapPartialAttribute {
        atype: name.into(),
        vals: values,
    }
}

fn change(operation: LdapModifyType, name: &str, values: Vec<Vec<u8>>) -> LdapModify {
    LdapModify {
        operation,
        modification: attr(name, values),
    }
}

/// Adds or brings up to date the serviceInstance and sets its addresses.
/// Returns its DN.
fn publish(settings: &Settings, addresses: &[SocketAddr]) -> Result<String, Error> {
    let mut s = settings.open()?;
    let name = settings.instance_name(&s.base);
    let dn = format!("CN={},{}", winsock::escape_rdn_value(&name), s.container);
    let described = || {
        vec![
            attr("displayName", vec![name.clone().into_bytes()]),
            attr("serviceClassID", vec![winsock::ILS_SERVICE_CLASS.to_vec()]),
            attr(
                "serviceInstanceVersion",
                vec![winsock::INSTANCE_VERSION.to_vec()],
            ),
        ]
    };
    let mut attributes = vec![
        attr("objectClass", vec![b"serviceInstance".to_vec()]),
        attr("cn", vec![name.clone().into_bytes()]),
    ];
    attributes.extend(described());
    match s.client.add(&dn, attributes) {
        Ok(()) => {}
        // Published before (by this server or its previous run): the
        // same entry is brought up to date.
        Err(e) if e.code() == Some(&LdapResultCode::EntryAlreadyExists) => {
            let changes = described()
                .into_iter()
                .map(|a| LdapModify {
                    operation: LdapModifyType::Replace,
                    modification: a,
                })
                .collect();
            s.client.modify(&dn, changes)?;
        }
        Err(e) => return Err(e),
    }
    let values = addresses
        .iter()
        .map(|&a| winsock::encode_address(a))
        .collect();
    s.client.modify(
        &dn,
        vec![change(LdapModifyType::Replace, "winsockAddresses", values)],
    )?;
    s.client.unbind();
    Ok(dn)
}

/// Deletes the addresses of the serviceInstance `dn` (3.5.10); one that
/// has none already is withdrawn.
fn withdraw(settings: &Settings, dn: &str) -> Result<(), Error> {
    // The DN is known: no search for the naming context, one step less
    // within the time a stop allows.
    let mut client = settings.connect()?;
    match client.modify(
        dn,
        vec![change(LdapModifyType::Delete, "winsockAddresses", vec![])],
    ) {
        Ok(()) => {}
        Err(e)
            if matches!(
                e.code(),
                Some(LdapResultCode::NoSuchAttribute | LdapResultCode::NoSuchObject)
            ) => {}
        Err(e) => return Err(e),
    }
    client.unbind();
    Ok(())
}

enum Message {
    /// Withdraw if published, then answer and end.
    Stop(Sender<()>),
}

/// The publication thread's handle.
pub struct Publisher {
    inbox: Sender<Message>,
    thread: Option<JoinHandle<()>>,
}

impl Publisher {
    /// Starts publishing `addresses` as `settings` say, in the
    /// background.
    pub fn start(settings: Settings, addresses: Vec<SocketAddr>) -> std::io::Result<Publisher> {
        let (inbox, messages) = crossbeam_channel::bounded(1);
        let thread = std::thread::Builder::new()
            .name("ilsd-publish".into())
            .spawn(move || run(&settings, &addresses, &messages))?;
        Ok(Publisher {
            inbox,
            thread: Some(thread),
        })
    }

    /// Withdraws the published addresses, waiting at most `within`; a
    /// domain controller slower than that is left as it is (logged).
    pub fn stop(mut self, within: Duration) {
        let (done, finished) = crossbeam_channel::bounded(1);
        if self.inbox.send(Message::Stop(done)).is_err() {
            return;
        }
        match finished.recv_timeout(within) {
            Ok(()) => {
                if let Some(thread) = self.thread.take() {
                    let _ = thread.join();
                }
            }
            Err(_) => log::warn!(
                "publish: the addresses were not withdrawn within {}s; stopping without",
                within.as_secs_f32()
            ),
        }
    }
}

fn run(settings: &Settings, addresses: &[SocketAddr], inbox: &Receiver<Message>) {
    if addresses.is_empty() {
        log::warn!(
            "publish: nothing to publish: the listeners' host has no address but loopback (set publish-address)"
        );
    }
    let mut retry = FIRST_RETRY;
    let mut failures = 0u32;
    let mut published: Option<String> = None;
    loop {
        let wait = if addresses.is_empty() {
            MAX_RETRY
        } else {
            match publish(settings, addresses) {
                Ok(dn) => {
                    if published.as_ref() != Some(&dn) || failures > 0 {
                        log::info!("publish: {dn} on {} with {}", settings.uri, list(addresses));
                    }
                    published = Some(dn);
                    failures = 0;
                    retry = FIRST_RETRY;
                    REPUBLISH
                }
                Err(e) => {
                    failures += 1;
                    // Every failure while they are few, then one in ten:
                    // a DC down for a day should not fill the journal.
                    if failures <= 3 || failures.is_multiple_of(10) {
                        log::warn!(
                            "publish: {} failed ({e}); trying again in {}s",
                            settings.uri,
                            retry.as_secs()
                        );
                    }
                    let wait = retry;
                    retry = (retry * 2).min(MAX_RETRY);
                    wait
                }
            }
        };
        match inbox.recv_timeout(wait) {
            Ok(Message::Stop(done)) => {
                if let Some(dn) = &published {
                    let started = Instant::now();
                    match withdraw(settings, dn) {
                        Ok(()) => log::info!(
                            "publish: withdrew the addresses of {dn} in {} ms",
                            started.elapsed().as_millis()
                        ),
                        Err(e) => {
                            log::warn!("publish: cannot withdraw the addresses of {dn}: {e}")
                        }
                    }
                }
                let _ = done.send(());
                return;
            }
            Err(RecvTimeoutError::Disconnected) => return,
            Err(RecvTimeoutError::Timeout) => {}
        }
    }
}

fn list(addresses: &[SocketAddr]) -> String {
    addresses
        .iter()
        .map(SocketAddr::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The addresses to publish for the listeners `listen` (those of
/// `dual_stack` take IPv4 too): each specific address as it is, and for
/// a wildcard the host's addresses of that family that other hosts can
/// reach: not loopback, not link-local.
pub fn addresses_to_publish(listen: &[SocketAddr], dual_stack: &[SocketAddr]) -> Vec<SocketAddr> {
    let host: Vec<IpAddr> = nix::ifaddrs::getifaddrs()
        .map(|ifs| {
            ifs.filter_map(|i| {
                let a = i.address?;
                a.as_sockaddr_in()
                    .map(|v4| IpAddr::V4(v4.ip()))
                    .or_else(|| a.as_sockaddr_in6().map(|v6| IpAddr::V6(v6.ip())))
            })
            .collect()
        })
        .unwrap_or_default();
    let mut out = Vec::new();
    for &addr in listen {
        if !addr.ip().is_unspecified() {
            out.push(addr);
            continue;
        }
        let reachable = |ip: &&IpAddr| {
            let family =
                ip.is_ipv4() == addr.is_ipv4() || (dual_stack.contains(&addr) && ip.is_ipv4());
            let local = match ip {
                IpAddr::V4(v4) => v4.is_loopback() || v4.is_link_local(),
                IpAddr::V6(v6) => {
                    v6.is_loopback() || v6.is_unicast_link_local() || v6.to_ipv4_mapped().is_some()
                }
            };
            family && !local
        };
        out.extend(
            host.iter()
                .filter(reachable)
                .map(|&ip| SocketAddr::new(ip, addr.port())),
        );
    }
    out.sort();
    out.dedup();
    out
}

/// One ILS server a domain knows.
#[derive(Debug)]
pub struct Listed {
    pub name: String,
    pub addresses: Vec<SocketAddr>,
}

/// The ILS servers published under the domain's WinsockServices (3.5.8).
pub fn list_servers(settings: &Settings) -> Result<Vec<Listed>, Error> {
    let mut s = settings.open()?;
    let filter = LdapFilter::And(vec![
        LdapFilter::Equality("objectClass".into(), "serviceInstance".into()),
        LdapFilter::Present("cn".into()),
        // ldap3_proto carries an assertion value as a string; the GUID
        // is not UTF-8, so it is matched on the class name here and the
        // GUID is compared below.
    ]);
    let entries = s.client.search(
        &s.container,
        LdapSearchScope::Subtree,
        filter,
        &["cn", "serviceClassID", "winsockAddresses"],
    )?;
    s.client.unbind();
    let mut out: Vec<Listed> = entries
        .into_iter()
        .filter(|e| {
            e.attributes.iter().any(|a| {
                a.atype.eq_ignore_ascii_case("serviceClassID")
                    && a.vals.iter().any(|v| v[..] == winsock::ILS_SERVICE_CLASS)
            })
        })
        .map(|e| {
            let values = |name: &str| {
                e.attributes
                    .iter()
                    .filter(|a| a.atype.eq_ignore_ascii_case(name))
                    .flat_map(|a| a.vals.iter())
                    .cloned()
                    .collect::<Vec<_>>()
            };
            Listed {
                name: values("cn")
                    .first()
                    .map(|v| String::from_utf8_lossy(v).into_owned())
                    .unwrap_or_else(|| e.dn.clone()),
                addresses: values("winsockAddresses")
                    .iter()
                    .filter_map(|v| winsock::decode_address(v))
                    .collect(),
            }
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// Whether an ILS server answers at `addr` now: an anonymous ILS search,
/// the people (`objectClass=rtPerson`, as the Dialer lists them) with a
/// name no one has, so that the answer is small. An ILS server answers it
/// with success; an LDAP server that is not one, with noSuchObject.
pub fn answers(addr: SocketAddr, timeout: Duration) -> Result<(), Error> {
    let uri = Uri {
        host: addr.ip().to_string(),
        port: addr.port(),
        ldaps: false,
    };
    let mut c = Client::connect(&uri, Security::Plain, None, timeout)?;
    c.search(
        "objectClass=rtPerson",
        LdapSearchScope::Base,
        LdapFilter::Equality("cn".into(), "ilsd-list-servers.invalid".into()),
        &["cn"],
    )?;
    c.unbind();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dns_domain_comes_from_the_dc_components() {
        assert_eq!(dns_domain("DC=ils,DC=test"), "ils.test");
        assert_eq!(dns_domain("dc=Example, dc=org"), "Example.org");
        assert_eq!(dns_domain("O=Intranet"), "");
    }

    #[test]
    fn specific_addresses_are_published_as_they_are() {
        let listen: Vec<SocketAddr> = vec![
            "127.0.0.1:1002".parse().unwrap(),
            "[::1]:1002".parse().unwrap(),
        ];
        assert_eq!(addresses_to_publish(&listen, &[]), {
            let mut l = listen.clone();
            l.sort();
            l
        });
    }

    #[test]
    fn a_wildcard_is_published_as_the_hosts_reachable_addresses_of_its_family() {
        let listen: Vec<SocketAddr> = vec!["0.0.0.0:1002".parse().unwrap()];
        let out = addresses_to_publish(&listen, &[]);
        assert!(!out.is_empty(), "every host has loopback at least");
        assert!(
            out.iter()
                .all(|a| a.is_ipv4() && a.port() == 1002 && !a.ip().is_unspecified())
        );
        // Loopback only when there is nothing else.
        if out.iter().any(|a| !a.ip().is_loopback()) {
            assert!(out.iter().all(|a| !a.ip().is_loopback()), "{out:?}");
        }
    }
}
