//! Requests to edged and what edgectl does with the typed replies: print
//! them as JSON (`--json`, the reply as edged sent it) or as text
//! (`render`), and pick the exit code.

use std::{
    io::{IsTerminal as _, Write as _},
    net::IpAddr,
    path::Path,
    process::ExitCode,
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result};
use edge_userspace::{
    config,
    control::{self, ConfigShow, ErrorKind, Event, Events, Lookup, Request, Response, Stats},
    desired,
};
use serde::{Serialize, de::DeserializeOwned};

use super::{Cli, render};

/// The exit code for a failed reply's kind.
fn exit_code(kind: Option<ErrorKind>) -> ExitCode {
    match kind {
        Some(ErrorKind::Invalid) => ExitCode::from(2),
        Some(ErrorKind::NotFound) => ExitCode::from(3),
        Some(ErrorKind::MapFull) => ExitCode::from(4),
        Some(ErrorKind::Denied) => ExitCode::from(5),
        _ => ExitCode::FAILURE,
    }
}

/// Sends `request`, expecting a reply of type `T`.
fn call<T: DeserializeOwned>(cli: &Cli, request: &Request) -> Result<Response<T>> {
    control::call(&cli.socket, request, Duration::from_secs(cli.timeout))
}

/// Prints a failed reply (as JSON with `--json`) and returns its exit code.
fn failed<T: Serialize>(cli: &Cli, r: &Response<T>) -> Result<ExitCode> {
    if cli.json {
        out(&format!("{}\n", serde_json::to_string_pretty(r)?))?;
    } else {
        eprintln!("edgectl: {}", r.error.as_deref().unwrap_or("failed"));
    }
    Ok(exit_code(r.kind))
}

/// The data of a successful reply.
fn data<T>(r: &Response<T>) -> Result<&T> {
    r.data
        .as_ref()
        .context("edged's reply is ok but carries no data")
}

/// Sends `request`, whose reply type is `T`; prints the reply as JSON or
/// with `text`.
pub(super) fn simple<T: Serialize + DeserializeOwned>(
    cli: &Cli,
    request: Request,
    text: impl Fn(&T) -> String,
) -> Result<ExitCode> {
    let r: Response<T> = call(cli, &request)?;
    if !r.ok {
        return failed(cli, &r);
    }
    let d = data(&r)?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    if cli.json {
        serde_json::to_writer_pretty(&mut out, &r)?;
        writeln!(out)?;
    } else {
        out.write_all(text(d).as_bytes())?;
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// `prefix lookup`: exit code 3 for an address no prefix covers.
pub(super) fn lookup(cli: &Cli, address: IpAddr, domain: Option<String>) -> Result<ExitCode> {
    let r: Response<Lookup> = call(cli, &Request::PrefixLookup { address, domain })?;
    if !r.ok {
        return failed(cli, &r);
    }
    let lookup = data(&r)?;
    if cli.json {
        out(&format!("{}\n", serde_json::to_string_pretty(&r)?))?;
    } else {
        out(&render::lookup(address, lookup))?;
    }
    Ok(match lookup {
        Lookup::Registered(_) => ExitCode::SUCCESS,
        Lookup::Unregistered(_) => ExitCode::from(3),
    })
}

/// `config check`: no daemon involved.
pub(super) fn config_check(cli: &Cli, file: &Path) -> Result<ExitCode> {
    let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    // UTF-8 (a file that is not is invalid, with the line), the file, then
    // the selection tables it lays out (their limit).
    let checked = config::decode(bytes).and_then(|text| {
        config::parse(&text).and_then(|plan| desired::layout(&plan).map(|_| plan))
    });
    match checked {
        Ok(plan) => {
            if cli.json {
                out(&format!(
                    "{}\n",
                    serde_json::json!({"ok": true, "problems": []})
                ))?;
            } else {
                let private = if plan.domains.is_empty() {
                    String::new()
                } else {
                    format!(
                        ", {} in {} private domains",
                        plan.domain_prefixes.len(),
                        plan.domains.len()
                    )
                };
                out(&format!(
                    "{}: ok ({} ports, {} PoPs, {} policies, {} prefixes{private})\n",
                    file.display(),
                    plan.ports.len(),
                    plan.pops.len(),
                    plan.policies.len(),
                    plan.prefixes.len()
                ))?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(invalid) => {
            if cli.json {
                let problems: Vec<_> = invalid
                    .0
                    .iter()
                    .map(|p| serde_json::json!({"line": p.line, "message": p.message}))
                    .collect();
                out(&format!(
                    "{}\n",
                    serde_json::json!({"ok": false, "problems": problems})
                ))?;
            } else {
                for p in &invalid.0 {
                    eprintln!("{}: {p}", file.display());
                }
            }
            Ok(ExitCode::from(2))
        }
    }
}

/// `config show` and `config diff`: the file as edged applied it and the
/// live changes, merged here (edged's loop does no TOML work for it).
fn config_show_reply(cli: &Cli) -> Result<Result<Response<ConfigShow>, ExitCode>> {
    let r: Response<ConfigShow> = call(cli, &Request::ConfigShow {})?;
    if !r.ok {
        return failed(cli, &r).map(Err);
    }
    Ok(Ok(r))
}

/// `config show [--effective]`.
pub(super) fn config_show(cli: &Cli, effective: bool) -> Result<ExitCode> {
    let r = match config_show_reply(cli)? {
        Ok(r) => r,
        Err(code) => return Ok(code),
    };
    let show = data(&r)?;
    if !effective {
        if cli.json {
            out(&format!("{}\n", serde_json::to_string_pretty(&r)?))?;
        } else {
            out(&show.text)?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    let overlay = config::overlay::overlay(&show.text, &show.live())
        .map_err(|e| anyhow::anyhow!("{e}"))
        .with_context(|| format!("reading {} as edged applied it", show.config.display()))?;
    if cli.json {
        let v = serde_json::json!({
            "ok": true,
            "config": show.config,
            "generation": show.generation,
            "effective": overlay.effective,
        });
        out(&format!("{}\n", serde_json::to_string_pretty(&v)?))?;
    } else {
        out(&render::effective(show, &overlay.effective)?)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `config diff`: each live change as the file's entry it drops and the
/// live entry it adds.
pub(super) fn config_diff(cli: &Cli) -> Result<ExitCode> {
    let r = match config_show_reply(cli)? {
        Ok(r) => r,
        Err(code) => return Ok(code),
    };
    let show = data(&r)?;
    let overlay = config::overlay::overlay(&show.text, &show.live())
        .map_err(|e| anyhow::anyhow!("{e}"))
        .with_context(|| format!("reading {} as edged applied it", show.config.display()))?;
    if cli.json {
        let changes: Vec<_> = show
            .changes
            .iter()
            .map(|c| {
                serde_json::json!({
                    "by": c.by,
                    "file": overlay.dropped_entry(c.domain.as_deref(), c.network),
                    "kind": c.kind,
                    "live": c.spec.as_ref().map(config::overlay::spec_table),
                    "network": c.network,
                    "time": c.time,
                })
            })
            .collect();
        let v = serde_json::json!({"ok": true, "config": show.config, "changes": changes});
        out(&format!("{}\n", serde_json::to_string_pretty(&v)?))?;
    } else {
        out(&render::diff(show, &overlay)?)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `prefix list` replies that are not streamed ([`super::list`]): an
/// error, or a whole reply decoded at once.
pub(super) fn list_reply(cli: &Cli, r: &Response<Vec<render::PrefixRow<'_>>>) -> Result<ExitCode> {
    if !r.ok {
        return failed(cli, r);
    }
    let rows = data(r)?;
    let mut out = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
    if cli.json {
        serde_json::to_writer_pretty(&mut out, r)?;
        writeln!(out)?;
    } else {
        super::list::text(rows, &mut out)?;
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// `prefix add --file` / `prefix del --file`: the file checked here, then
/// sent as one `prefix_batch`; nothing is sent when a line is bad.
pub(super) fn batch(cli: &Cli, file: &Path, kind: super::batch::Kind) -> Result<ExitCode> {
    let text = super::batch::read(file)?;
    let items = match super::batch::parse(&text, kind) {
        Ok(items) => items,
        Err(problems) => {
            let name = if file == Path::new("-") {
                "<stdin>".to_string()
            } else {
                file.display().to_string()
            };
            if cli.json {
                let problems: Vec<_> = problems
                    .iter()
                    .map(|(line, message)| serde_json::json!({"line": line, "message": message}))
                    .collect();
                println!(
                    "{}",
                    serde_json::json!({"ok": false, "error": "bad batch lines; nothing was sent", "problems": problems})
                );
            } else {
                for (line, message) in &problems {
                    eprintln!("{name}:{line}: {message}");
                }
                eprintln!(
                    "edgectl: {} bad line{} in {name}; nothing was sent",
                    problems.len(),
                    if problems.len() == 1 { "" } else { "s" }
                );
            }
            return Ok(ExitCode::from(2));
        }
    };
    let r: Response<control::Changed> =
        control::call_batch(&cli.socket, &items, Duration::from_secs(cli.timeout))?;
    if !r.ok {
        return failed(cli, &r);
    }
    let d = data(&r)?;
    if cli.json {
        println!("{}", serde_json::to_string_pretty(&r)?);
    } else {
        print!("{}", render::changed(d));
    }
    Ok(ExitCode::SUCCESS)
}

/// One stats sample: (taken at, counters), or the failed reply.
fn sample(cli: &Cli, request: &Request) -> Result<Result<(Instant, Stats), Response<Stats>>> {
    let r: Response<Stats> = call(cli, request)?;
    Ok(match r.data {
        Some(stats) if r.ok => Ok((Instant::now(), stats)),
        _ => Err(r),
    })
}

/// `stats`, once or watching (rates between samples).
pub(super) fn stats(cli: &Cli, watch: bool, interval: f64, request: Request) -> Result<ExitCode> {
    let interval = Duration::from_secs_f64(interval.clamp(0.1, 3600.0));
    let (mut t0, mut v0) = match sample(cli, &request)? {
        Ok(s) => s,
        Err(r) => return failed(cli, &r),
    };
    if !watch {
        if cli.json {
            out(&format!(
                "{}\n",
                serde_json::to_string_pretty(&Response::ok(v0))?
            ))?;
        } else {
            out(&render::stats(&v0, None))?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    loop {
        std::thread::sleep(interval);
        let (t1, v1) = match sample(cli, &request)? {
            Ok(s) => s,
            Err(r) => {
                eprintln!("edgectl: {}", r.error.as_deref().unwrap_or("failed"));
                return Ok(exit_code(r.kind));
            }
        };
        let secs = (t1 - t0).as_secs_f64();
        let text = if cli.json {
            format!(
                "{}\n",
                serde_json::to_string(&render::Watch {
                    interval_seconds: secs,
                    rows: render::rates(&v0, &v1, secs),
                })?
            )
        } else if std::io::stdout().is_terminal() {
            // Clear the screen and home the cursor: refresh in place.
            format!("\x1b[2J\x1b[H{}", render::stats(&v1, Some((&v0, secs))))
        } else {
            // Into a pipe or file: one block after another, no escapes.
            format!("{}\n", render::stats(&v1, Some((&v0, secs))))
        };
        let mut out = std::io::stdout().lock();
        match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
            Ok(()) => {}
            // The reader went away (`| head`): done, not a failure.
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(ExitCode::SUCCESS),
            Err(e) => return Err(e.into()),
        }
        (t0, v0) = (t1, v1);
    }
}

/// `events --follow`: the last `limit` events, then every new one as edged
/// records it (a look every `interval` seconds), until interrupted. With
/// --json, one event per line (JSON Lines).
pub(super) fn follow_events(cli: &Cli, limit: usize, interval: f64) -> Result<ExitCode> {
    let interval = Duration::from_secs_f64(interval.clamp(0.1, 3600.0));
    // The newest event shown, to find where the next look continues (edged
    // keeps the last 1000; a look asks for all of them).
    let mut last: Option<Event> = None;
    let mut first = true;
    loop {
        // The first look also needs the newest event, to continue after
        // it, when `limit` is 0.
        let ask = if first { limit.max(1) } else { 1000 };
        let r: Response<Events> = call(cli, &Request::Events { limit: ask })?;
        if !r.ok {
            return failed(cli, &r);
        }
        let events = &data(&r)?.events;
        let new = match &last {
            None if first => &events[events.len().saturating_sub(limit)..],
            None => &events[..],
            Some(l) => match events.iter().rposition(|e| e == l) {
                Some(i) => &events[i + 1..],
                // Gone from edged's window: everything after its time.
                None => {
                    let from = events.partition_point(|e| e.time <= l.time);
                    &events[from..]
                }
            },
        };
        let mut text = String::new();
        for e in new {
            if cli.json {
                text += &serde_json::to_string(e)?;
                text.push('\n');
            } else {
                text += &render::event(e);
            }
        }
        out(&text)?;
        if let Some(e) = events.last() {
            last = Some(e.clone());
        }
        first = false;
        std::thread::sleep(interval);
    }
}

/// Writes `text` to stdout. A reader that went away (`edgectl ... | head`)
/// is an [`std::io::ErrorKind::BrokenPipe`] error, which `main` ends
/// quietly with success, as `stats --watch` does.
pub(super) fn out(text: &str) -> Result<()> {
    use std::io::Write as _;
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(text.as_bytes())?;
    stdout.flush()?;
    Ok(())
}
