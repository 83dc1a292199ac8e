//! Reading a big config fast: the `[[prefixes]]` tables that end the file
//! (where a config of a million prefixes has them) are parsed in chunks of
//! a few thousand, on every core, instead of as one TOML document: the
//! parser's token list and tree for 80 MB of text cost gigabytes and most of
//! the time. The result is exactly what parsing the whole file gives, or
//! nothing (then the caller parses the whole file, which also gives any
//! error its exact message and line).
//!
//! Why the result is the same: the file is split at lines that read exactly
//! `[[prefixes]]`, only in the final run of table headers that are all
//! `[[prefixes]]` (any other header after them: no split). The part before
//! the first split (the head) must parse as a document of its own without a
//! `prefixes` key, and every chunk as a document holding only `prefixes`
//! tables. A document that parses ends at the top level, outside any string,
//! array or inline table, so each split line is a real table header in the
//! whole file too (a split inside a multi-line string leaves the chunk
//! before it unterminated: it does not parse, and the whole file is parsed
//! instead). The whole file is then the head's keys plus the chunks'
//! `[[prefixes]]` entries in order, and spans are shifted by each chunk's
//! offset, so lines come out the same.

use serde::Deserialize;
use toml::Spanned;

use super::schema::{Dscp, File, PrefixConfig};

/// Entries per chunk.
const CHUNK: usize = 4096;
/// Below this many bytes the whole file is parsed as one document.
const MIN_LEN: usize = 1 << 20;

/// The `[[prefixes]]` entries of one chunk.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Tail {
    prefixes: Vec<PrefixConfig>,
}

/// The file as its schema, read in chunks; `None` when the file does not
/// have the shape this needs (or is small), or any part fails to parse.
pub(super) fn read(text: &str) -> Option<File> {
    if text.len() < MIN_LEN {
        return None;
    }
    let splits = splits(text)?;
    let head = &text[..splits[0]];
    let keys: toml::Table = toml::from_str(head).ok()?;
    if keys.contains_key("prefixes") {
        return None;
    }
    let mut file: File = toml::from_str(head).ok()?;
    // Chunk boundaries: every CHUNK-th split, and the end.
    let bounds: Vec<usize> = splits
        .iter()
        .copied()
        .step_by(CHUNK)
        .chain([text.len()])
        .collect();
    let chunks: Vec<(usize, &str)> = bounds
        .windows(2)
        .map(|w| (w[0], &text[w[0]..w[1]]))
        .collect();
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, 8)
        .min(chunks.len());
    let per = chunks.len().div_ceil(threads);
    let parsed: Vec<Option<Vec<PrefixConfig>>> = std::thread::scope(|s| {
        let handles: Vec<_> = chunks
            .chunks(per)
            .map(|mine| {
                s.spawn(move || -> Option<Vec<PrefixConfig>> {
                    let mut out = Vec::with_capacity(mine.len() * CHUNK);
                    for &(at, chunk) in mine {
                        let tail: Tail = toml::from_str(chunk).ok()?;
                        out.extend(tail.prefixes.into_iter().map(|p| shift(p, at)));
                    }
                    Some(out)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().ok().flatten())
            .collect()
    });
    let total = parsed.iter().flatten().map(Vec::len).sum();
    file.prefixes.reserve_exact(total);
    for part in parsed {
        file.prefixes.extend(part?);
    }
    Some(file)
}

/// Byte offsets of the lines that read exactly `[[prefixes]]` in the final
/// run of table headers that are all `[[prefixes]]`; `None` when there is
/// no such run.
fn splits(text: &str) -> Option<Vec<usize>> {
    let mut out = Vec::new();
    let mut at = 0;
    for line in text.split_inclusive('\n') {
        let t = line.trim();
        if t.starts_with('[') {
            if t == "[[prefixes]]" {
                out.push(at);
            } else {
                out.clear();
            }
        }
        at += line.len();
    }
    (!out.is_empty()).then_some(out)
}

fn moved<T>(s: Spanned<T>, by: usize) -> Spanned<T> {
    let span = s.span();
    Spanned::new(span.start + by..span.end + by, s.into_inner())
}

/// `p` with every span moved `by` bytes (its chunk's offset in the file).
fn shift(p: PrefixConfig, by: usize) -> PrefixConfig {
    PrefixConfig {
        prefix: moved(p.prefix, by),
        registration: p.registration,
        preference: p.preference,
        policy: p.policy.map(|s| moved(s, by)),
        pop: p.pop.map(|s| moved(s, by)),
        dscp: p.dscp.map(|s: Spanned<Dscp>| moved(s, by)),
        protect: p.protect.into_iter().map(|s| moved(s, by)).collect(),
        region: p.region.map(|s| moved(s, by)),
        domain: p.domain.map(|s| moved(s, by)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEAD: &str = r#"
[forwarding]
backbone_exit = "core"

[[ports]]
interface = "bb0"
role = "backbone"

[[pops]]
name = "core"
interface = "bb0"
mac = "02:00:00:00:0a:01"
"#;

    /// A config big enough to be chunked: `n` prefixes after `head`.
    fn big(head: &str, n: usize) -> String {
        let mut s = head.to_string();
        for i in 0..n {
            let a = std::net::Ipv4Addr::from(0xc612_0000u32 + i as u32);
            s.push_str(&format!(
                "\n[[prefixes]]\nprefix = \"{a}/32\"\npop = \"core\"\nregistration = \"r{}\"\ndscp = {}\nprotect = []\n",
                i / 7,
                i % 64
            ));
        }
        s
    }

    fn whole(text: &str) -> File {
        toml::from_str(text).unwrap()
    }

    /// The chunked read gives exactly the whole parse's entries and spans.
    #[test]
    fn chunks_read_like_the_whole_file() {
        let text = big(HEAD, 20_000);
        assert!(text.len() > MIN_LEN);
        let fast = read(&text).expect("chunked");
        let slow = whole(&text);
        assert_eq!(fast.prefixes.len(), 20_000);
        assert_eq!(format!("{fast:?}"), format!("{slow:?}"));
        // And validated: the same plan, the same problems with their lines.
        let bad = text.replacen("pop = \"core\"", "pop = \"nowhere\"", 1)
            + "\n[[prefixes]]\nprefix = \"198.18.0.1/32\"\npop = \"core\"\n";
        let fast = super::super::Validator::new(&bad).run(read(&bad).unwrap());
        let slow = super::super::Validator::new(&bad).run(whole(&bad));
        assert_eq!(
            format!("{:?}", fast.as_ref().unwrap_err().0),
            format!("{:?}", slow.as_ref().unwrap_err().0)
        );
        assert_eq!(fast.unwrap_err().0.len(), 2);
    }

    /// Shapes the chunks cannot take are left to the whole parse.
    #[test]
    fn other_shapes_are_parsed_whole() {
        // A header after the prefixes that is not [[prefixes]].
        let text = big(HEAD, 20_000) + "\n[[pops]]\nname = \"x\"\ninterface = \"bb0\"\n";
        assert!(read(&text).is_none());
        // An inline prefixes array in the head.
        let text = big(&format!("prefixes = []\n{HEAD}"), 20_000);
        assert!(read(&text).is_none());
        // A line `[[prefixes]]` inside a multi-line string: inside a chunk
        // it is read as the string it is; where a chunk would end (entry
        // 4095's, the 4096th split), the chunk before does not parse.
        for (reg, chunked) in [("r10", true), ("r585", false)] {
            let mut text = big(HEAD, 20_000);
            let line = format!("registration = \"{reg}\"");
            let at = text.find(&line).unwrap();
            text.replace_range(
                at..at + line.len(),
                &format!("registration = \"\"\"{reg}\n[[prefixes]]\n\"\"\""),
            );
            let slow = whole(&text);
            assert_eq!(slow.prefixes.len(), 20_000);
            match read(&text) {
                Some(fast) => {
                    assert!(chunked, "{reg}");
                    assert_eq!(format!("{fast:?}"), format!("{slow:?}"));
                }
                None => assert!(!chunked, "{reg}"),
            }
        }
        // An unknown key in an entry.
        let text = big(HEAD, 20_000).replacen("protect = []", "colour = 1", 1);
        assert!(read(&text).is_none());
        // Small files are parsed whole.
        assert!(read(&big(HEAD, 10)).is_none());
    }
}
