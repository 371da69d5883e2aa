//! The `ilsd` daemon: options, then the configuration, then the server
//! until a stop signal, then an exit code. Everything else lives in the
//! library ([`ilsd::daemon`]).

use std::process::ExitCode;

use ilsd::daemon::options::{self, USAGE};
use ilsd::daemon::process::{DaemonError, stderr_is_journal};

fn run() -> Result<(), DaemonError> {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let Some(args) = options::parse(&argv)? else {
        return Ok(());
    };
    let config = options::load_config(&args)?;
    if args.list_servers {
        return ilsd::daemon::publication::list_servers(&config, &mut std::io::stdout().lock());
    }
    if args.test_only {
        println!("configuration OK");
        return Ok(());
    }
    ilsd::daemon::serve(&args, config)
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // Under the journal, the error priority, so that `journalctl
            // -p err` shows why the service did not start.
            let err = if stderr_is_journal() { "<3>" } else { "" };
            match &e {
                DaemonError::Usage(m) => eprintln!("{err}ilsd: {m}\n{USAGE}"),
                other => eprintln!("{err}ilsd: {other}"),
            }
            ExitCode::from(e.exit_code() as u8)
        }
    }
}
