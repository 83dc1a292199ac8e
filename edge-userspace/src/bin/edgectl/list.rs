//! `prefix list`: a reply of up to a million rows, read as it arrives and
//! written out row by row while edged is still sending it: no copy of the
//! whole reply is kept, and decoding here overlaps with encoding in edged.
//! Text: columns as wide as the first [`WINDOW`] rows need (a later, wider
//! cell pushes its row's next columns right); `--json`: the reply as
//! edged sent it, pretty-printed, the same bytes as printing it whole.

use std::{io::Write, process::ExitCode, time::Duration};

use anyhow::{Context as _, Result, bail};
use edge_userspace::control::{self, Request, Response};

use super::{Cli, commands, render::PrefixRow};

/// How a successful `prefix_list` reply starts; anything else (an error, a
/// reply of another version) is read whole and decoded as any reply.
const HEAD: &[u8] = br#"{"protocol":1,"ok":true,"data":["#;
/// Bytes read at a time.
const CHUNK: usize = 1 << 20;
/// Rows that set the text columns' widths.
pub(super) const WINDOW: usize = 4096;

/// The reply as it arrives: `buf[start..]` is what is read and not used.
struct Incoming<R> {
    stream: R,
    buf: Vec<u8>,
    start: usize,
    timeout: Duration,
}

impl<R: std::io::Read> Incoming<R> {
    fn rest(&self) -> &[u8] {
        &self.buf[self.start..]
    }

    /// Reads more; `false` at the end of the stream.
    fn more(&mut self) -> Result<bool> {
        if self.start > 0 && self.start >= self.buf.len() / 2 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        let len = self.buf.len();
        self.buf.resize(len + CHUNK, 0);
        let n = loop {
            match self.stream.read(&mut self.buf[len..]) {
                Ok(n) => break n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.buf.truncate(len);
                    return Err(control::read_error(e, self.timeout));
                }
            }
        };
        self.buf.truncate(len + n);
        Ok(n > 0)
    }

    /// Skips blanks and commas; the next byte, reading more as needed
    /// (`None`: the end of the stream).
    fn next_byte(&mut self) -> Result<Option<u8>> {
        loop {
            let skip = self
                .rest()
                .iter()
                .take_while(|b| b.is_ascii_whitespace() || **b == b',')
                .count();
            self.start += skip;
            if let Some(&b) = self.rest().first() {
                return Ok(Some(b));
            }
            if !self.more()? {
                return Ok(None);
            }
        }
    }
}

/// Where the rows go.
trait Sink {
    fn row(&mut self, row: &Row<'_>, out: &mut dyn Write) -> std::io::Result<()>;
    fn finish(&mut self, out: &mut dyn Write) -> std::io::Result<()>;
}

/// A row's fields, borrowed from the reply (as read by [`fast_row`]) or
/// from a row serde decoded.
struct Row<'a> {
    counter_slot: u32,
    dscp: Option<u8>,
    policy: Option<&'a str>,
    preference: &'a str,
    prefix: &'a str,
    protect: Vec<&'a str>,
    registration: &'a str,
    source: &'a str,
}

impl<'a> From<&'a PrefixRow<'_>> for Row<'a> {
    fn from(p: &'a PrefixRow<'_>) -> Self {
        Self {
            counter_slot: p.counter_slot,
            dscp: p.dscp,
            policy: p.policy.as_deref(),
            preference: &p.preference,
            prefix: &p.prefix,
            protect: p.protect.iter().map(|s| &**s).collect(),
            registration: &p.registration,
            source: &p.source,
        }
    }
}

/// A row in exactly the shape edged writes it (compact, the fields in
/// their order, numbers plain, strings without escapes), read without
/// serde: several times faster, and a million rows are listed. `None`
/// when the row is not in that shape or not complete: serde decodes it
/// (or says it is incomplete). What it accepts, serde reads the same way.
fn fast_row(b: &[u8]) -> Option<(Row<'_>, usize)> {
    struct P<'a> {
        b: &'a [u8],
        at: usize,
    }
    impl<'a> P<'a> {
        fn lit(&mut self, l: &[u8]) -> Option<()> {
            self.b[self.at..].starts_with(l).then(|| self.at += l.len())
        }
        fn uint(&mut self) -> Option<u64> {
            let digits = self.b[self.at..]
                .iter()
                .take_while(|c| c.is_ascii_digit())
                .count();
            let d = &self.b[self.at..self.at + digits];
            if digits == 0 || digits > 10 || (digits > 1 && d[0] == b'0') {
                return None;
            }
            self.at += digits;
            Some(d.iter().fold(0u64, |n, c| n * 10 + u64::from(c - b'0')))
        }
        fn string(&mut self) -> Option<&'a str> {
            self.lit(b"\"")?;
            let len = self.b[self.at..].iter().position(|&c| c == b'"')?;
            let s = &self.b[self.at..self.at + len];
            if s.iter().any(|&c| c == b'\\' || c < 0x20) {
                return None;
            }
            self.at += len + 1;
            std::str::from_utf8(s).ok()
        }
    }
    let mut p = P { b, at: 0 };
    p.lit(b"{\"counter_slot\":")?;
    let counter_slot = u32::try_from(p.uint()?).ok()?;
    p.lit(b",\"dscp\":")?;
    let dscp = match p.lit(b"null") {
        Some(()) => None,
        None => Some(u8::try_from(p.uint()?).ok()?),
    };
    p.lit(b",\"policy\":")?;
    let policy = match p.lit(b"null") {
        Some(()) => None,
        None => Some(p.string()?),
    };
    p.lit(b",\"preference\":")?;
    let preference = p.string()?;
    p.lit(b",\"prefix\":")?;
    let prefix = p.string()?;
    p.lit(b",\"protect\":[")?;
    let mut protect = Vec::new();
    if p.lit(b"]").is_none() {
        loop {
            protect.push(p.string()?);
            if p.lit(b"]").is_some() {
                break;
            }
            p.lit(b",")?;
        }
    }
    p.lit(b",\"registration\":")?;
    let registration = p.string()?;
    p.lit(b",\"source\":")?;
    let source = p.string()?;
    p.lit(b"}")?;
    Some((
        Row {
            counter_slot,
            dscp,
            policy,
            preference,
            prefix,
            protect,
            registration,
            source,
        },
        p.at,
    ))
}

/// `prefix list`, streamed.
pub(super) fn prefix_list(cli: &Cli, request: Request) -> Result<ExitCode> {
    let timeout = Duration::from_secs(cli.timeout);
    let (stream, written) = control::send(&cli.socket, &request, &[], timeout)?;
    let mut r = Incoming {
        stream,
        buf: Vec::with_capacity(2 * CHUNK),
        start: 0,
        timeout,
    };
    while r.buf.len() < HEAD.len() && !r.buf.contains(&b'\n') {
        if !r.more()? {
            break;
        }
    }
    if r.buf.is_empty() {
        written.context("sending the request")?;
        bail!("edged closed the connection without replying");
    }
    if !r.buf.starts_with(HEAD) {
        // An error, or a reply this edgectl does not stream: read it whole.
        while !r.buf.contains(&b'\n') {
            if !r.more()? {
                break;
            }
        }
        let line =
            String::from_utf8(std::mem::take(&mut r.buf)).context("edged's reply is not UTF-8")?;
        let reply: Response<Vec<PrefixRow<'_>>> = control::decode_reply(&line)?;
        return commands::list_reply(cli, &reply);
    }
    r.start = HEAD.len();
    let mut out = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
    let mut sink: Box<dyn Sink> = if cli.json {
        Box::new(Json::default())
    } else {
        Box::new(Text::default())
    };
    rows(&mut r, sink.as_mut(), &mut out)?;
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// The rows of the `data` array after [`HEAD`], each into `sink` as it
/// arrives, then the end of the reply.
fn rows<R: std::io::Read>(
    r: &mut Incoming<R>,
    sink: &mut dyn Sink,
    out: &mut dyn Write,
) -> Result<()> {
    loop {
        match r.next_byte()? {
            None => bail!("edged's reply ended in the middle of the prefix list"),
            Some(b']') => break,
            Some(_) => {}
        }
        // One row, decoded borrowing from the buffer and written out
        // before the buffer moves on.
        let used = if let Some((row, n)) = fast_row(r.rest()) {
            sink.row(&row, out)?;
            Some(n)
        } else {
            let mut rows = serde_json::Deserializer::from_slice(r.rest()).into_iter::<PrefixRow>();
            match rows.next() {
                Some(Ok(row)) => {
                    sink.row(&Row::from(&row), out)?;
                    Some(rows.byte_offset())
                }
                Some(Err(e)) if e.is_eof() => None,
                None => None,
                Some(Err(e)) => {
                    return Err(anyhow::Error::new(e).context("edged's prefix list"));
                }
            }
        };
        match used {
            Some(n) => r.start += n,
            None if r.more()? => {}
            None => bail!("edged's reply ended in the middle of the prefix list"),
        }
    }
    sink.finish(out)?;
    Ok(())
}

/// The reply pretty-printed as `serde_json::to_writer_pretty` prints the
/// whole [`Response`], a row at a time.
#[derive(Default)]
struct Json {
    rows: usize,
    scratch: Vec<u8>,
}

impl Sink for Json {
    fn row(&mut self, row: &Row<'_>, out: &mut dyn Write) -> std::io::Result<()> {
        let o = &mut self.scratch;
        o.clear();
        if self.rows == 0 {
            o.extend_from_slice(b"{\n  \"protocol\": 1,\n  \"ok\": true,\n  \"data\": [\n    ");
        } else {
            o.extend_from_slice(b",\n    ");
        }
        self.rows += 1;
        let mut n = itoa::Buffer::new();
        // Two levels deep: the fields at six spaces, the brace at four.
        o.extend_from_slice(b"{\n      \"counter_slot\": ");
        o.extend_from_slice(n.format(row.counter_slot).as_bytes());
        o.extend_from_slice(b",\n      \"dscp\": ");
        match row.dscp {
            Some(d) => o.extend_from_slice(n.format(d).as_bytes()),
            None => o.extend_from_slice(b"null"),
        }
        o.extend_from_slice(b",\n      \"policy\": ");
        match row.policy {
            Some(p) => control::write_json_str(o, p),
            None => o.extend_from_slice(b"null"),
        }
        o.extend_from_slice(b",\n      \"preference\": ");
        control::write_json_str(o, row.preference);
        o.extend_from_slice(b",\n      \"prefix\": ");
        control::write_json_str(o, row.prefix);
        o.extend_from_slice(b",\n      \"protect\": [");
        for (i, port) in row.protect.iter().enumerate() {
            o.extend_from_slice(if i == 0 {
                b"\n        "
            } else {
                b",\n        "
            });
            control::write_json_str(o, port);
        }
        if !row.protect.is_empty() {
            o.extend_from_slice(b"\n      ");
        }
        o.extend_from_slice(b"],\n      \"registration\": ");
        control::write_json_str(o, row.registration);
        o.extend_from_slice(b",\n      \"source\": ");
        control::write_json_str(o, row.source);
        o.extend_from_slice(b"\n    }");
        out.write_all(o)
    }

    fn finish(&mut self, out: &mut dyn Write) -> std::io::Result<()> {
        if self.rows == 0 {
            out.write_all(b"{\n  \"protocol\": 1,\n  \"ok\": true,\n  \"data\": []\n}\n")
        } else {
            out.write_all(b"\n  ]\n}\n")
        }
    }
}

/// The table: the first [`WINDOW`] rows are kept (as text) until their
/// widths are known; the rest are written as they come.
#[derive(Default)]
struct Text {
    window: Vec<[String; 7]>,
    widths: Option<[usize; 6]>,
    cells: [String; 7],
    line: Vec<u8>,
}

const HEADER: [&str; 7] = [
    "prefix",
    "registration",
    "preference",
    "policy",
    "dscp",
    "source",
    "protect",
];

impl Text {
    /// The row's cells into `self.cells`.
    fn cells(&mut self, p: &Row<'_>) {
        use std::fmt::Write as _;
        let c = &mut self.cells;
        for cell in c.iter_mut() {
            cell.clear();
        }
        c[0].push_str(p.prefix);
        c[1].push_str(p.registration);
        c[2].push_str(p.preference);
        c[3].push_str(p.policy.unwrap_or("-"));
        match p.dscp {
            Some(d) => {
                let _ = write!(c[4], "{d}");
            }
            None => c[4].push('-'),
        }
        c[5].push_str(p.source);
        if p.protect.is_empty() {
            c[6].push('-');
        } else {
            for (i, port) in p.protect.iter().enumerate() {
                if i > 0 {
                    c[6].push(',');
                }
                c[6].push_str(port);
            }
        }
    }

    /// One line of `cells` padded to `widths`, one space between columns.
    fn write_line(
        line: &mut Vec<u8>,
        widths: &[usize; 6],
        cells: &[impl AsRef<str>],
        out: &mut dyn Write,
    ) -> std::io::Result<()> {
        line.clear();
        for (i, cell) in cells.iter().enumerate() {
            let cell = cell.as_ref();
            line.extend_from_slice(cell.as_bytes());
            if let Some(&w) = widths.get(i) {
                let len = if cell.is_ascii() {
                    cell.len()
                } else {
                    cell.chars().count()
                };
                line.resize(line.len() + w.saturating_sub(len) + 1, b' ');
            }
        }
        line.push(b'\n');
        out.write_all(line)
    }

    /// Widths from the window, then the header and the window's rows.
    fn flush_window(&mut self, out: &mut dyn Write) -> std::io::Result<()> {
        let mut widths = [0usize; 6];
        for (w, h) in widths.iter_mut().zip(HEADER) {
            *w = h.len();
        }
        for row in &self.window {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        Self::write_line(&mut self.line, &widths, &HEADER, out)?;
        for row in std::mem::take(&mut self.window) {
            Self::write_line(&mut self.line, &widths, &row, out)?;
        }
        self.widths = Some(widths);
        Ok(())
    }
}

impl Sink for Text {
    fn row(&mut self, row: &Row<'_>, out: &mut dyn Write) -> std::io::Result<()> {
        self.cells(row);
        match self.widths {
            Some(widths) => Self::write_line(&mut self.line, &widths, &self.cells, out),
            None => {
                self.window.push(self.cells.clone());
                if self.window.len() == WINDOW {
                    self.flush_window(out)?;
                }
                Ok(())
            }
        }
    }

    fn finish(&mut self, out: &mut dyn Write) -> std::io::Result<()> {
        if self.widths.is_none() {
            self.flush_window(out)?;
        }
        Ok(())
    }
}

/// The text of `rows`, as `prefix list` writes it (for the other commands
/// that list prefixes, and tests).
pub(super) fn text(rows: &[PrefixRow<'_>], out: &mut dyn Write) -> std::io::Result<()> {
    let mut t = Text::default();
    for row in rows {
        t.row(&Row::from(row), out)?;
    }
    t.finish(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reply line of `n` rows as edged writes it, with some rows that
    /// need escapes, non-ASCII text, IPv6 and every source.
    fn reply(n: usize) -> String {
        let rows: Vec<String> = (0..n)
            .map(|i| {
                let (prefix, registration, protect) = match i % 4 {
                    0 => (format!("198.18.{}.{}/32", i / 256 % 256, i % 256), format!("bench-{}", i / 64), "[]".to_string()),
                    1 => (format!("2001:db8:{:x}::/64", i), "quote \\\" é 🙂".to_string(), r#"["peer0","peer1"]"#.to_string()),
                    2 => (format!("2001:db8:1234:5678:9abc:def0:{:x}:0/112", i % 65536), "r".into(), r#"["p"]"#.into()),
                    _ => (format!("10.{}.{}.0/24", i / 256 % 256, i % 256), "wide registration name here".into(), "[]".into()),
                };
                let source = ["config", "live", "route table 100", "config"][i % 4];
                let dscp = if i % 3 == 0 { "null".to_string() } else { (i % 64).to_string() };
                let policy = if i % 5 == 0 { "null".to_string() } else { format!("\"pop:p{}\"", i % 7) };
                format!(
                    r#"{{"counter_slot":{},"dscp":{dscp},"policy":{policy},"preference":"microsoft","prefix":"{prefix}","protect":{protect},"registration":"{registration}","source":"{source}"}}"#,
                    i.min(65535)
                )
            })
            .collect();
        format!(
            "{{\"protocol\":1,\"ok\":true,\"data\":[{}]}}\n",
            rows.join(",")
        )
    }

    /// A reader that hands out `step` bytes at a time: rows cut anywhere.
    struct Trickle<'a>(&'a [u8], usize);
    impl std::io::Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = self.1.min(buf.len()).min(self.0.len());
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    fn streamed(line: &str, step: usize, json: bool) -> String {
        let mut r = Incoming {
            stream: Trickle(line.as_bytes(), step),
            buf: Vec::new(),
            start: 0,
            timeout: Duration::from_secs(1),
        };
        while r.buf.len() < HEAD.len() {
            assert!(r.more().unwrap());
        }
        assert!(r.buf.starts_with(HEAD));
        r.start = HEAD.len();
        let mut out = Vec::new();
        let mut sink: Box<dyn Sink> = if json {
            Box::new(Json::default())
        } else {
            Box::new(Text::default())
        };
        rows(&mut r, sink.as_mut(), &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    /// Streamed, a row at a time from pieces of any size, the output is
    /// what decoding the whole reply and printing it gives: the JSON
    /// byte for byte, the text with the same columns.
    #[test]
    fn streamed_rows_print_as_the_whole_reply() {
        for n in [0, 1, 5, WINDOW + 37] {
            let line = reply(n);
            let whole: Response<Vec<PrefixRow<'_>>> = control::decode_reply(&line).unwrap();
            let mut want = serde_json::to_string_pretty(&whole).unwrap();
            want.push('\n');
            let mut text = Vec::new();
            super::text(whole.data.as_ref().unwrap(), &mut text).unwrap();
            let text = String::from_utf8(text).unwrap();
            assert_eq!(text.lines().count(), n + 1);
            for step in [1, 7, 4096, 1 << 20] {
                if n > 100 && step < 4096 {
                    continue;
                }
                assert_eq!(
                    streamed(&line, step, true),
                    want,
                    "{n} rows, {step} bytes at a time"
                );
                assert_eq!(
                    streamed(&line, step, false),
                    text,
                    "{n} rows, {step} bytes at a time"
                );
            }
        }
        // The columns fit the widest cell of the first rows (IPv6 and the
        // registration here), one space apart.
        let mut text = Vec::new();
        let line = reply(4);
        let whole: Response<Vec<PrefixRow<'_>>> = control::decode_reply(&line).unwrap();
        super::text(whole.data.as_ref().unwrap(), &mut text).unwrap();
        let text = String::from_utf8(text).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        let widths = [36, 27, 10, 6, 4, 15];
        let mut at = 0;
        for (w, name) in widths.iter().zip(HEADER) {
            for line in &lines {
                let cell: String = line.chars().skip(at).take(w + 1).collect();
                assert!(
                    cell.ends_with(' ') && !cell.starts_with(' '),
                    "{name}: {cell:?} in\n{text}"
                );
            }
            at += w + 1;
        }
        assert!(
            lines[3].starts_with("2001:db8:1234:5678:9abc:def0:2:0/112 r "),
            "{text}"
        );
        assert!(lines.iter().all(|l| !l.ends_with(' ')), "{text}");
    }

    /// The fast reader takes the rows in edged's shape and reads them as
    /// serde does; anything else (escapes, another order, a number with a
    /// leading zero, a row cut short) is left to serde.
    #[test]
    fn the_fast_reader_reads_what_serde_reads_or_nothing() {
        let line = reply(8);
        let data = &line[HEAD.len()..line.len() - 3];
        let mut fast = 0;
        for text in data.split("},{").map(|r| {
            let r = r.trim_start_matches('{').trim_end_matches('}');
            format!("{{{r}}}")
        }) {
            let serde: PrefixRow<'_> = serde_json::from_str(&text).unwrap();
            let by_serde = Row::from(&serde);
            if let Some((row, n)) = fast_row(text.as_bytes()) {
                fast += 1;
                assert_eq!(n, text.len());
                assert_eq!(
                    (
                        row.counter_slot,
                        row.dscp,
                        row.policy,
                        row.preference,
                        row.prefix,
                        &row.protect,
                        row.registration,
                        row.source
                    ),
                    (
                        by_serde.counter_slot,
                        by_serde.dscp,
                        by_serde.policy,
                        by_serde.preference,
                        by_serde.prefix,
                        &by_serde.protect,
                        by_serde.registration,
                        by_serde.source
                    ),
                );
                assert!(fast_row(&text.as_bytes()[..n - 1]).is_none());
            } else {
                assert!(text.contains('\\'), "{text}");
            }
        }
        assert_eq!(fast, 6);
        for other in [
            r#"{"counter_slot":01,"dscp":null,"policy":null,"preference":"m","prefix":"p","protect":[],"registration":"r","source":"s"}"#,
            r#"{"dscp":null,"counter_slot":1,"policy":null,"preference":"m","prefix":"p","protect":[],"registration":"r","source":"s"}"#,
            r#"{"counter_slot":1,"dscp":256,"policy":null,"preference":"m","prefix":"p","protect":[],"registration":"r","source":"s"}"#,
            r#"{"counter_slot":1, "dscp":null,"policy":null,"preference":"m","prefix":"p","protect":[],"registration":"r","source":"s"}"#,
        ] {
            assert!(fast_row(other.as_bytes()).is_none(), "{other}");
        }
    }

    /// A reply cut short is an error, not a short list.
    #[test]
    fn a_reply_cut_short_is_an_error() {
        let line = reply(10);
        let cut = &line[..line.len() - 40];
        let mut r = Incoming {
            stream: Trickle(cut.as_bytes(), 100),
            buf: Vec::new(),
            start: 0,
            timeout: Duration::from_secs(1),
        };
        while r.buf.len() < HEAD.len() {
            assert!(r.more().unwrap());
        }
        r.start = HEAD.len();
        let e = rows(&mut r, &mut Json::default(), &mut Vec::new()).unwrap_err();
        assert!(e.to_string().contains("ended in the middle"), "{e}");
    }
}
