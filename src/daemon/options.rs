//! The command line: options, `--help`, and the configuration they
//! select (defaults, then the file, then the options). Runs on the main
//! thread, at start and on every reload.

use std::path::PathBuf;

use super::config::SETTINGS;
use super::process::DaemonError;
use crate::server::Config;

const DEFAULT_CONFIG: &str = "/etc/ilsd/ilsd.conf";
pub const USAGE: &str =
    "usage: ilsd [-htV] [-f file] [-l addr:port] [-u user] [-g group] [--setting value ...]
       ilsd --list-servers [URI] [-f file] [--setting value ...]";

/// The parsed command line.
pub struct Args {
    pub config_path: PathBuf,
    pub config_named: bool,
    pub test_only: bool,
    /// `--list-servers`: list the domain's ILS servers instead of serving.
    pub list_servers: bool,
    /// Settings given on the command line, in order.
    pub settings: Vec<(String, String)>,
}

fn options() -> getopts::Options {
    let mut opts = getopts::Options::new();
    opts.optopt(
        "f",
        "config",
        &format!("configuration file (default {DEFAULT_CONFIG})"),
        "FILE",
    );
    opts.optflag("t", "test-config", "check the configuration and exit");
    opts.optflag("V", "version", "print the version and exit");
    opts.optflag(
        "",
        "list-servers",
        "list the ILS servers published in Active Directory (at URI, or publish-uri) and exit",
    );
    opts.optopt(
        "",
        "nt-hash",
        "read a password from standard input and print NAME's line for ntlm-accounts",
        "NAME",
    );
    opts.optflag("h", "help", "print this help and exit");
    for s in SETTINGS {
        let short = match s.name {
            "listen" => "l",
            "user" => "u",
            "group" => "g",
            _ => "",
        };
        if s.flag {
            opts.optflag(short, s.name, s.help);
        } else if s.repeatable {
            opts.optmulti(short, s.name, s.help, s.hint);
        } else {
            opts.optopt(short, s.name, s.help, s.hint);
        }
    }
    opts
}

/// The help text: every option with its one line.
pub fn help() -> String {
    options().usage(USAGE)
}

/// Reads the command line (without the program name). `None` when it
/// asked for help or the version, which are printed.
pub fn parse(argv: &[String]) -> Result<Option<Args>, DaemonError> {
    let matches = options()
        .parse(argv)
        .map_err(|e| DaemonError::Usage(e.to_string()))?;
    let list_servers = matches.opt_present("list-servers");
    let uri = match (list_servers, &matches.free[..]) {
        (_, []) => None,
        (true, [uri]) => Some(uri.clone()),
        (_, [.., extra]) => {
            return Err(DaemonError::Usage(format!("unexpected argument '{extra}'")));
        }
    };
    if matches.opt_present("h") {
        print!("{}", help());
        return Ok(None);
    }
    if matches.opt_present("V") {
        println!("ilsd {}", env!("CARGO_PKG_VERSION"));
        return Ok(None);
    }
    if let Some(name) = matches.opt_str("nt-hash") {
        print!("{}", nt_hash_line(&name)?);
        return Ok(None);
    }
    let named = matches.opt_str("f");
    let mut settings = Vec::new();
    for s in SETTINGS {
        if s.flag {
            if matches.opt_present(s.name) {
                settings.push((s.name.to_string(), "yes".to_string()));
            }
            continue;
        }
        for value in matches.opt_strs(s.name) {
            settings.push((s.name.to_string(), value));
        }
    }
    if let Some(uri) = uri {
        settings.push(("publish-uri".to_string(), uri));
    }
    Ok(Some(Args {
        config_named: named.is_some(),
        config_path: PathBuf::from(named.unwrap_or_else(|| DEFAULT_CONFIG.to_string())),
        test_only: matches.opt_present("t"),
        list_servers,
        settings,
    }))
}

/// The configuration: defaults, then the file, then the command line.
pub fn load_config(args: &Args) -> Result<Config, DaemonError> {
    let mut config = Config::default();
    config
        .load_file(&args.config_path, args.config_named)
        .map_err(|e| DaemonError::Config(e.to_string()))?;
    let mut seen: Vec<&str> = Vec::new();
    for (name, value) in &args.settings {
        let fresh = !seen.contains(&name.as_str());
        seen.push(name);
        config
            .set(name, value, fresh)
            .map_err(|e| DaemonError::Usage(format!("--{name}: {e}")))?;
    }
    config.validate().map_err(|e| {
        // Settings that contradict each other may come from the file,
        // the command line or both: name where they were read.
        let file = args
            .config_path
            .exists()
            .then(|| args.config_path.display());
        DaemonError::Config(match (file, args.settings.is_empty()) {
            (Some(file), true) => format!("{file}: {e}"),
            (Some(file), false) => format!("{e} (settings of {file} and the command line)"),
            (None, _) => e,
        })
    })?;
    Ok(config)
}

/// The smbpasswd line of an account whose password is the first line of
/// standard input (`ilsd --nt-hash NAME`): the password never appears on
/// a command line, where other users could see it.
fn nt_hash_line(name: &str) -> Result<String, DaemonError> {
    if name.is_empty() || name.contains(':') {
        return Err(DaemonError::Usage(
            "--nt-hash needs a user name without ':'".into(),
        ));
    }
    let mut password = String::new();
    std::io::stdin()
        .read_line(&mut password)
        .map_err(|e| DaemonError::Usage(format!("cannot read the password: {e}")))?;
    let password = password.strip_suffix('\n').unwrap_or(&password);
    let password = password.strip_suffix('\r').unwrap_or(password);
    let hash = crate::auth::ntlm::nt_hash(password);
    Ok(format!("{}\n", crate::auth::smbpasswd::line(name, &hash)))
}
