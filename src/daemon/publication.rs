//! The `publish-` settings made into what the publication thread and
//! `ilsd --list-servers` need: the password read from its file, the
//! addresses chosen. Runs on the main thread, before privileges are
//! dropped (the password file may be readable by root only).

use std::io::Write;
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;

use super::process::DaemonError;
use crate::publish::client::{Security, Uri};
use crate::publish::{self, Secret, Settings};
use crate::server::Config;

/// The publication settings, or `None` when nothing is to be published.
pub fn settings(config: &Config) -> Result<Option<Settings>, DaemonError> {
    let Some(uri) = &config.publish_uri else {
        return Ok(None);
    };
    let uri = Uri::parse(uri).map_err(DaemonError::Config)?;
    let security = match (uri.ldaps, config.publish_insecure) {
        (true, _) => Security::Ldaps,
        (false, false) => Security::StartTls,
        (false, true) => Security::Plain,
    };
    let bind = match (&config.publish_bind, &config.publish_password_file) {
        (Some(who), Some(file)) => Some((who.clone(), Secret(read_password(file)?))),
        _ => None,
    };
    if security == Security::Plain && bind.is_some() {
        log::warn!(
            "publish: {uri} without TLS: the password of {} crosses the network in the clear",
            config.publish_bind.as_deref().unwrap_or_default()
        );
    }
    Ok(Some(Settings {
        uri,
        security,
        ca_file: config.publish_ca_file.clone(),
        bind,
        name: config.publish_name.clone(),
        base: config.publish_base.clone(),
        timeout: config.publish_timeout,
    }))
}

/// The first line of the password file; a file others may read is
/// warned about.
fn read_password(file: &std::path::Path) -> Result<String, DaemonError> {
    let text = std::fs::read_to_string(file).map_err(|e| {
        DaemonError::Config(format!("publish-password-file {}: {e}", file.display()))
    })?;
    if let Ok(meta) = std::fs::metadata(file)
        && meta.permissions().mode() & 0o004 != 0
    {
        log::warn!(
            "publish-password-file {} is readable by every user: chmod o-r it",
            file.display()
        );
    }
    let password = text.lines().next().unwrap_or_default();
    if password.is_empty() {
        return Err(DaemonError::Config(format!(
            "publish-password-file {}: the first line is empty",
            file.display()
        )));
    }
    Ok(password.to_string())
}

/// What to publish: `publish-address`, or the addresses the listeners
/// serve.
pub fn addresses(config: &Config, listening: &[SocketAddr]) -> Vec<SocketAddr> {
    if !config.publish_address.is_empty() {
        return config.publish_address.clone();
    }
    publish::addresses_to_publish(listening, &config.dual_stack)
}

/// The publication settings, to tell whether a reload changed them
/// (they take effect at a restart).
pub fn restart_only(config: &Config) -> Vec<String> {
    vec![
        format!("{:?}", config.publish_uri),
        format!("{:?}", config.publish_bind),
        format!("{:?}", config.publish_password_file),
        format!("{:?}", config.publish_name),
        format!("{:?}", config.publish_base),
        format!("{:?}", config.publish_ca_file),
        format!("{:?}", config.publish_insecure),
        format!("{:?}", config.publish_address),
        format!("{:?}", config.publish_timeout),
    ]
}

/// `ilsd --list-servers`: one line per ILS server the domain knows, with
/// its addresses and whether each answers an LDAP search now.
pub fn list_servers(config: &Config, out: &mut impl Write) -> Result<(), DaemonError> {
    let settings = settings(config)?.ok_or_else(|| {
        DaemonError::Usage("--list-servers needs a URI, or publish-uri in the configuration".into())
    })?;
    let servers = publish::list_servers(&settings)
        .map_err(|e| DaemonError::Unavailable(format!("{}: {e}", settings.uri)))?;
    let write = |out: &mut dyn Write, line: String| {
        writeln!(out, "{line}").map_err(|e| DaemonError::Internal(e.to_string()))
    };
    if servers.is_empty() {
        eprintln!("ilsd: no ILS server is published in {}", settings.uri);
    }
    let timeout = settings.timeout.min(std::time::Duration::from_secs(3));
    for server in servers {
        let addresses = server
            .addresses
            .iter()
            .map(SocketAddr::to_string)
            .collect::<Vec<_>>()
            .join(",");
        let state = if server.addresses.is_empty() {
            "withdrawn".to_string()
        } else {
            // It answers when any of its addresses does.
            let mut last = None;
            let answered = server.addresses.iter().any(|&a| {
                publish::answers(a, timeout)
                    .map_err(|e| last = Some(e))
                    .is_ok()
            });
            match (answered, last) {
                (true, _) => "answers".to_string(),
                (false, Some(e)) => format!("no answer ({e})"),
                (false, None) => "no answer".to_string(),
            }
        };
        let addresses = if addresses.is_empty() {
            "-".into()
        } else {
            addresses
        };
        write(out, format!("{}\t{addresses}\t{state}", server.name))?;
    }
    Ok(())
}
