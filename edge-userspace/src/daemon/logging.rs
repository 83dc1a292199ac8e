//! edged's log format. Under systemd (stderr is the journal stream that
//! `JOURNAL_STREAM` names) each line starts with its syslog priority, `<3>`
//! for errors to `<7>` for debug and trace, and carries no timestamp: the
//! sd-daemon(3) convention, so journald keeps the level (`journalctl -p
//! warning`) and stamps the line once. Anywhere else: env_logger's usual
//! format, with its timestamp.

use std::io::Write as _;

use log::Level;

/// The syslog priority of a log level (sd-daemon(3): `SD_ERR` .. `SD_DEBUG`).
pub fn priority(level: Level) -> u8 {
    match level {
        Level::Error => 3,
        Level::Warn => 4,
        Level::Info => 6,
        Level::Debug | Level::Trace => 7,
    }
}

/// One record as journald reads it: every line of the message prefixed
/// with the priority (journald splits a record at newlines, and a line
/// without a prefix would be logged as info), the target on the first.
pub fn journal_line(level: Level, target: &str, message: &str) -> String {
    let p = priority(level);
    let mut out = String::new();
    for (i, line) in message.split('\n').enumerate() {
        if i == 0 {
            out.push_str(&format!("<{p}>{target}: {line}\n"));
        } else {
            out.push_str(&format!("<{p}>{line}\n"));
        }
    }
    out
}

/// Whether `JOURNAL_STREAM` (`DEVICE:INODE`) names `stat`'s file: stderr is
/// connected to the journal, not merely inherited a variable from a
/// process that was.
pub fn is_journal_stream(journal_stream: &str, stat: &nix::sys::stat::FileStat) -> bool {
    let Some((dev, ino)) = journal_stream.split_once(':') else {
        return false;
    };
    matches!(
        (dev.parse::<u64>(), ino.parse::<u64>()),
        (Ok(dev), Ok(ino)) if dev == stat.st_dev && ino == stat.st_ino
    )
}

/// Whether edged's stderr goes to the journal.
fn stderr_is_journal() -> bool {
    let Some(var) = std::env::var_os("JOURNAL_STREAM") else {
        return false;
    };
    let Ok(stat) = nix::sys::stat::fstat(std::io::stderr()) else {
        return false;
    };
    is_journal_stream(&var.to_string_lossy(), &stat)
}

/// Installs the logger: level from `RUST_LOG` (default `info`), format by
/// where stderr goes.
pub fn init() {
    let mut builder =
        env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"));
    if stderr_is_journal() {
        builder.format(|buf, record| {
            let line = journal_line(record.level(), record.target(), &record.args().to_string());
            buf.write_all(line.as_bytes())
        });
    }
    builder.init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_level_has_its_syslog_priority_and_no_timestamp() {
        let cases = [
            (Level::Error, "<3>edged: boom\n"),
            (Level::Warn, "<4>edged: boom\n"),
            (Level::Info, "<6>edged: boom\n"),
            (Level::Debug, "<7>edged: boom\n"),
            (Level::Trace, "<7>edged: boom\n"),
        ];
        for (level, want) in cases {
            assert_eq!(journal_line(level, "edged", "boom"), want, "{level}");
        }
    }

    #[test]
    fn every_line_of_a_multiline_message_keeps_the_priority() {
        assert_eq!(
            journal_line(
                Level::Warn,
                "edge_userspace::daemon",
                "config rejected:\n  line 3: x"
            ),
            "<4>edge_userspace::daemon: config rejected:\n<4>  line 3: x\n"
        );
    }

    #[test]
    fn journal_stream_must_name_stderrs_own_file() {
        let file = std::fs::File::open("/").unwrap();
        let stat = nix::sys::stat::fstat(&file).unwrap();
        let own = format!("{}:{}", stat.st_dev, stat.st_ino);
        assert!(is_journal_stream(&own, &stat));
        let other = format!("{}:{}", stat.st_dev, stat.st_ino + 1);
        assert!(!is_journal_stream(&other, &stat));
        assert!(!is_journal_stream("", &stat));
        assert!(!is_journal_stream("garbage", &stat));
    }
}
